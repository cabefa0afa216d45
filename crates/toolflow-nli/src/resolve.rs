//! Finding an NLI checkpoint: an explicit directory, toolflow's cache, then the Hugging Face
//! hub. There is no further fallback: without a checkpoint EnR is reported as unavailable.

use std::path::{Path, PathBuf};

use toolflow_fetch::{CacheEntry, Layout, Source};

use crate::checkpoint::{DEFAULT_MODEL, MODEL_FILES};
use crate::error::NliError;

/// Where a checkpoint is looked for.
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
}

/// A directory holding [`MODEL_FILES`]: `opts.model_dir` (which must be complete), else the
/// cache, else the hub, whose files are then installed into the cache. When nothing works
/// the error ([`NliError::Unavailable`]) lists what each source said.
pub fn resolve_model(opts: &NliOptions) -> Result<PathBuf, NliError> {
    if let Some(dir) = &opts.model_dir {
        check_model_dir(dir)?;
        return Ok(dir.clone());
    }
    let entry = CacheEntry {
        target: opts.cached_model_dir(),
        layout: Layout::Directory,
        check: &|dir| check_model_dir(dir).map_err(|err| err.to_string()),
    };
    let hub = Source::Hub {
        repo: &opts.repo_id,
        files: &MODEL_FILES,
        hub_cache: None,
    };
    toolflow_fetch::resolve(&entry, &[hub], opts.offline)
        .map_err(|attempts| NliError::Unavailable { attempts })
}

/// Fails with the names of whichever checkpoint files `dir` lacks.
pub(crate) fn check_model_dir(dir: &Path) -> Result<(), NliError> {
    let missing = toolflow_fetch::missing_files(dir, &MODEL_FILES);
    if missing.is_empty() {
        Ok(())
    } else {
        Err(NliError::MissingModelFiles {
            dir: dir.to_path_buf(),
            missing,
        })
    }
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
