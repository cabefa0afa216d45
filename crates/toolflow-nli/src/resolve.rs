//! Finding an NLI checkpoint: an explicit directory, toolflow's cache, then the Hugging Face
//! hub. There is no further fallback: without a checkpoint EnR is reported as unavailable.

use std::path::{Path, PathBuf};

use crate::{DEFAULT_MODEL, MODEL_FILES, NliError};

#[derive(Debug, Clone)]
pub struct NliOptions {
    /// Use exactly this directory; no other source is tried.
    pub model_dir: Option<PathBuf>,
    /// toolflow's cache directory; a hub checkpoint lives under `models/<repo id>/`.
    pub cache_dir: PathBuf,
    /// The hub repository, [`DEFAULT_MODEL`] by default.
    pub repo_id: String,
    /// Skip the hub (also implied by `HF_HUB_OFFLINE=1` or `TOOLFLOW_OFFLINE=1`).
    pub offline: bool,
}

impl NliOptions {
    /// The default checkpoint, no explicit directory, offline only when the environment says so.
    pub fn with_cache_dir(cache_dir: PathBuf) -> Self {
        Self {
            model_dir: None,
            cache_dir,
            repo_id: DEFAULT_MODEL.to_string(),
            offline: false,
        }
    }

    /// Where the cache keeps the checkpoint of `repo_id`.
    pub fn cached_model_dir(&self) -> PathBuf {
        self.repo_id
            .split('/')
            .fold(self.cache_dir.join("models"), |dir, part| dir.join(part))
    }

    fn hub_disabled(&self) -> Option<&'static str> {
        toolflow_fetch::hub_disabled(self.offline)
    }
}

/// A directory holding [`MODEL_FILES`]: `opts.model_dir` (which must be complete), else the
/// cache, else the hub, whose files are then installed into the cache. When nothing works
/// the error ([`NliError::Unavailable`]) lists what each source said.
pub fn resolve_model(opts: &NliOptions) -> Result<PathBuf, NliError> {
    if let Some(dir) = &opts.model_dir {
        check_model_dir(dir)?;
        return Ok(dir.clone());
    }
    let target = opts.cached_model_dir();
    match check_model_dir(&target) {
        Ok(()) => Ok(target),
        Err(err) => {
            let mut attempts = vec![format!("cache: {err}")];
            match opts.hub_disabled() {
                Some(reason) => attempts.push(format!("hub {}: skipped ({reason})", opts.repo_id)),
                None => match fetch_from_hub(&opts.repo_id, &target) {
                    Ok(()) => return Ok(target),
                    Err(err) => attempts.push(format!("hub {}: {err}", opts.repo_id)),
                },
            }
            Err(NliError::Unavailable { attempts })
        }
    }
}

/// Fails with the names of whichever checkpoint files `dir` lacks.
pub(crate) fn check_model_dir(dir: &Path) -> Result<(), NliError> {
    let missing: Vec<String> = MODEL_FILES
        .iter()
        .filter(|name| !dir.join(name).is_file())
        .map(|name| name.to_string())
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(NliError::MissingModelFiles {
            dir: dir.to_path_buf(),
            missing,
        })
    }
}

fn fetch_from_hub(repo_id: &str, target: &Path) -> Result<(), String> {
    let sources = toolflow_fetch::hub_files(repo_id, &MODEL_FILES, None)?;
    // Copy into a sibling staging directory, then rename: a reader never sees half a model.
    let parent = target
        .parent()
        .ok_or_else(|| format!("{} has no parent directory", target.display()))?;
    std::fs::create_dir_all(parent).map_err(|err| format!("{}: {err}", parent.display()))?;
    let staging = parent.join(format!(
        ".{}.partial-{}",
        target.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    std::fs::create_dir_all(&staging).map_err(|err| format!("{}: {err}", staging.display()))?;
    for (name, source) in MODEL_FILES.iter().zip(&sources) {
        let dest = staging.join(name);
        toolflow_fetch::link_or_copy(source, &dest)
            .map_err(|err| format!("{}: {err}", dest.display()))?;
    }
    std::fs::rename(&staging, target).map_err(|err| {
        let _ = std::fs::remove_dir_all(&staging);
        format!("{}: {err}", target.display())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offline_with_an_empty_cache_says_what_was_tried() {
        let cache = tempfile::tempdir().unwrap();
        let options = NliOptions {
            offline: true,
            ..NliOptions::with_cache_dir(cache.path().to_path_buf())
        };
        assert_eq!(
            options.cached_model_dir(),
            cache
                .path()
                .join("models/cross-encoder/nli-deberta-v3-xsmall")
        );
        let err = resolve_model(&options).unwrap_err().to_string();
        assert!(err.starts_with("no NLI model; tried: cache: "), "{err}");
        assert!(
            err.contains("lacks config.json, tokenizer.json, model.safetensors"),
            "{err}"
        );
        assert!(
            err.contains("hub cross-encoder/nli-deberta-v3-xsmall: skipped (offline mode)"),
            "{err}"
        );
    }

    #[test]
    fn an_explicit_directory_must_be_complete() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), "{}").unwrap();
        let options = NliOptions {
            model_dir: Some(dir.path().to_path_buf()),
            ..NliOptions::with_cache_dir(dir.path().to_path_buf())
        };
        let err = resolve_model(&options).unwrap_err();
        assert!(
            matches!(&err, NliError::MissingModelFiles { missing, .. } if missing == &["tokenizer.json", "model.safetensors"]),
            "{err}"
        );
    }
}
