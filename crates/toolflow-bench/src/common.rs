//! Shared by the benchmark binaries: locating files, preparing inputs, running a child
//! process and measuring its wall time and peak memory.

#![allow(dead_code)] // each binary uses part of it

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository exists")
}

/// `../shared` next to the repository, where the read-only corpora live.
pub fn shared_dir() -> PathBuf {
    repo_root().join("../shared")
}

/// The `toolflow` binary built next to this benchmark binary (same profile).
pub fn toolflow_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let binary = exe.with_file_name(format!("toolflow{}", std::env::consts::EXE_SUFFIX));
    if !binary.exists() {
        bail!(
            "{} is missing: run `cargo build --release -p toolflow` first",
            binary.display()
        );
    }
    Ok(binary)
}

/// Copies a tools file, giving repeated names a `__N` suffix (what `toolflow import` does for
/// duplicates) so that `toolflow graph` accepts it; line order, and so tool indexes, is kept.
pub fn unique_names_copy(source: &Path, target: &Path) -> anyhow::Result<usize> {
    let text =
        std::fs::read_to_string(source).with_context(|| format!("reading {}", source.display()))?;
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = String::with_capacity(text.len());
    let mut renamed = 0;
    for (number, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            bail!(
                "{}:{}: blank line; tool indexes would not match lines",
                source.display(),
                number + 1
            );
        }
        let mut tool: serde_json::Value = serde_json::from_str(line)
            .with_context(|| format!("{}:{}", source.display(), number + 1))?;
        let name = tool["name"].as_str().unwrap_or_default().to_string();
        let count = seen.entry(name.clone()).or_insert(0);
        *count += 1;
        if *count > 1 {
            let mut suffix = *count;
            while seen.contains_key(&format!("{name}__{suffix}")) {
                suffix += 1;
            }
            let unique = format!("{name}__{suffix}");
            seen.insert(unique.clone(), 1);
            tool["name"] = unique.into();
            renamed += 1;
        }
        out.push_str(&serde_json::to_string(&tool)?);
        out.push('\n');
    }
    std::fs::write(target, out).with_context(|| format!("writing {}", target.display()))?;
    Ok(renamed)
}

pub struct Measured {
    pub wall: Duration,
    /// Peak resident set of the child, from `wait4`'s rusage.
    pub max_rss_bytes: u64,
    /// User plus system CPU time of the child.
    pub cpu: Duration,
    pub stdout: String,
}

/// Runs `command` to completion and measures it; fails on a non-zero exit, showing stderr.
pub fn run_measured(command: &mut Command, scratch: &Path) -> anyhow::Result<Measured> {
    let stdout_path = scratch.join("child.stdout");
    let stderr_path = scratch.join("child.stderr");
    command
        .stdin(Stdio::null())
        .stdout(File::create(&stdout_path)?)
        .stderr(File::create(&stderr_path)?);
    let started = Instant::now();
    let child = command
        .spawn()
        .with_context(|| format!("starting {command:?}"))?;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    let wall = started.elapsed();
    if pid < 0 {
        bail!(
            "waiting for {command:?}: {}",
            std::io::Error::last_os_error()
        );
    }
    let stdout = std::fs::read_to_string(&stdout_path)?;
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
        bail!("{command:?} failed ({status}):\n{stderr}");
    }
    // ru_maxrss is in kilobytes on Linux.
    let seconds =
        |time: libc::timeval| Duration::new(time.tv_sec as u64, time.tv_usec as u32 * 1000);
    Ok(Measured {
        wall,
        max_rss_bytes: usage.ru_maxrss as u64 * 1024,
        cpu: seconds(usage.ru_utime) + seconds(usage.ru_stime),
        stdout,
    })
}

pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}
