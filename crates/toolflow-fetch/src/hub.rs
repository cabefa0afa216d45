//! The Hugging Face hub as a model source: whether it may be asked, and fetching files with
//! a short reachability probe first.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::FetchError;

/// How long the hub may take to answer the probe before it is taken as unreachable.
pub const HUB_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the hub must not be asked, if it must not: `offline` was given, or `HF_HUB_OFFLINE`
/// or `TOOLFLOW_OFFLINE` is set to a true value (`1`, `true`, `yes`, `on`).
pub fn hub_disabled(offline: bool) -> Option<&'static str> {
    if offline {
        return Some("offline mode");
    }
    ["HF_HUB_OFFLINE", "TOOLFLOW_OFFLINE"]
        .into_iter()
        .find(|var| std::env::var(var).is_ok_and(|value| is_truthy(&value)))
}

fn is_truthy(value: &str) -> bool {
    matches!(
        value.trim().to_ascii_lowercase().as_str(),
        "1" | "true" | "yes" | "on"
    )
}

/// Downloads `files` of the hub model `repo_id` (into hf-hub's own cache, or `hub_cache`)
/// and returns their local paths, in order. The hub is probed first: hf-hub's own requests
/// have no timeout, and the probe makes an unreachable hub fail in seconds, not minutes.
pub fn hub_files(
    repo_id: &str,
    files: &[&str],
    hub_cache: Option<&Path>,
) -> Result<Vec<PathBuf>, FetchError> {
    let mut builder = hf_hub::api::sync::ApiBuilder::from_env().with_progress(false);
    if let Some(dir) = hub_cache {
        builder = builder.with_cache_dir(dir.to_path_buf());
    }
    let api = builder
        .build()
        .map_err(|err| FetchError::Hub(err.to_string()))?;
    let repo = api.model(repo_id.to_string());
    repo.info_request()
        .timeout(HUB_TIMEOUT)
        .call()
        .map_err(|err| FetchError::Unreachable(err.to_string()))?;
    files
        .iter()
        .map(|name| {
            tracing::info!(repo = repo_id, file = name, "downloading from the hub");
            repo.get(name)
                .map_err(|err| FetchError::Hub(format!("{name}: {err}")))
        })
        .collect()
}

/// Puts `source` at `dest` as a hard link (hub caches hold the blobs, so no second copy of
/// a large model is made), or as a copy where linking fails.
pub fn link_or_copy(source: &Path, dest: &Path) -> std::io::Result<()> {
    if std::fs::hard_link(source, dest).is_ok() {
        return Ok(());
    }
    std::fs::copy(source, dest).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offline_wins_and_true_values_are_read_loosely() {
        assert_eq!(hub_disabled(true), Some("offline mode"));
        for value in ["1", "true", "YES", " on "] {
            assert!(is_truthy(value), "{value}");
        }
        for value in ["0", "false", "", "off", "no"] {
            assert!(!is_truthy(value), "{value}");
        }
    }

    #[test]
    fn a_link_or_copy_has_the_source_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("blob");
        std::fs::write(&source, b"weights").unwrap();
        let dest = dir.path().join("model.bin");
        link_or_copy(&source, &dest).unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"weights");
        let error =
            link_or_copy(&dir.path().join("absent"), &dest.with_extension("x")).unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::NotFound);
    }
}
