//! The exclusive lock on a sweep's output directory (docs/sweeps.md,
//! "One writer per directory").
//!
//! A sweep writing stream `BASE` (`points`, or `points.shard-I-of-N`) holds
//! `DIR/BASE.lock`; `accsim merge` holds `DIR/points.lock` of its output
//! directory, since it writes the same final outputs as an unsharded run.
//! Shards of one sweep hold different files, so they may share a directory.
//!
//! The lock is an advisory `flock` (fs4) on that file, which the kernel
//! releases when the holder exits, however it exits (SIGKILL included), so
//! a lock never outlives its process. The file holds the holder's pid and
//! host for the refusal message; the holder empties it on a clean exit, so
//! a non-empty file whose lock is free was left by a run that was killed,
//! and is taken over with a warning.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use fs4::FileExt;

use crate::error::{Error, InputError, Result};

/// A held lock; released (and its file emptied) when dropped.
#[derive(Debug)]
pub struct SweepLock {
    file: Option<File>,
    path: PathBuf,
}

/// What [`SweepLock::acquire`] found.
#[derive(Debug)]
pub struct Acquired {
    pub lock: SweepLock,
    /// Something the user should know: a stale lock taken over, or a file
    /// system that cannot lock.
    pub warning: Option<String>,
}

fn output_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Output {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// This process, as the lock file records it.
fn holder_line() -> String {
    format!(
        "pid {} on host {}\n",
        std::process::id(),
        gethostname::gethostname().to_string_lossy()
    )
}

fn read_holder(file: &mut File) -> String {
    let mut text = String::new();
    let _ = file.rewind().and_then(|()| file.read_to_string(&mut text));
    text.trim().to_string()
}

/// The holder of a lock held by another process. A process writes its
/// line right after taking the lock, so an empty file means it is between
/// the two: read again for up to a second (every 5 ms) before calling it
/// "another process".
fn wait_for_holder(file: &mut File) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    loop {
        let holder = read_holder(file);
        if !holder.is_empty() || std::time::Instant::now() >= deadline {
            return holder;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

impl SweepLock {
    /// Takes `DIR/BASE.lock` for `what` (e.g. "sweep"), creating `dir`;
    /// refuses with an input error naming the holder when another process
    /// holds it.
    pub fn acquire(dir: &Path, base: &str) -> Result<Acquired> {
        std::fs::create_dir_all(dir).map_err(|e| output_error(dir, e))?;
        let path = dir.join(format!("{base}.lock"));
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| output_error(&path, e))?;
        let mut warning = None;
        match FileExt::try_lock(&file) {
            Ok(()) => {
                let before = read_holder(&mut file);
                if !before.is_empty() {
                    warning = Some(format!(
                        "{}: taking over the lock of {before}, which ended without releasing \
                         it (killed?); its finished points are kept",
                        path.display()
                    ));
                }
            }
            Err(fs4::TryLockError::WouldBlock) => {
                let holder = wait_for_holder(&mut file);
                return Err(InputError::new(
                    &path,
                    format!(
                        "{} is being written by {}; valid: wait for that run to finish (or \
                         stop it), or give another --out",
                        dir.display(),
                        if holder.is_empty() {
                            "another process".to_string()
                        } else {
                            holder
                        }
                    ),
                )
                .into());
            }
            Err(fs4::TryLockError::Error(e)) => {
                warning = Some(format!(
                    "{}: cannot lock ({e}); running without a lock: make sure no other run \
                     writes {}",
                    path.display(),
                    dir.display()
                ));
            }
        }
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| file.write_all(holder_line().as_bytes()))
            .and_then(|()| file.sync_data())
            .map_err(|e| output_error(&path, e))?;
        Ok(Acquired {
            lock: SweepLock {
                file: Some(file),
                path,
            },
            warning,
        })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SweepLock {
    fn drop(&mut self) {
        // Empty the file while still holding the lock: an empty file marks
        // a clean release. Closing the file releases the lock.
        if let Some(file) = self.file.take() {
            let _ = file.set_len(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_and_a_clean_release_leaves_an_empty_file() {
        let dir = tempfile::tempdir().unwrap();
        let first = SweepLock::acquire(dir.path(), "points").unwrap();
        assert!(first.warning.is_none());
        let text = std::fs::read_to_string(first.lock.path()).unwrap();
        assert_eq!(text, holder_line());
        // flock locks belong to open file descriptions: a second open in
        // the same process conflicts like another process would.
        let e = SweepLock::acquire(dir.path(), "points").unwrap_err();
        let message = e.to_string();
        assert!(
            message.contains(&format!("is being written by pid {}", std::process::id())),
            "{message}"
        );
        assert!(message.contains("points.lock"), "{message}");
        // Another stream's lock is independent.
        assert!(SweepLock::acquire(dir.path(), "points.shard-0-of-2").is_ok());
        let path = first.lock.path().to_path_buf();
        drop(first);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
        let again = SweepLock::acquire(dir.path(), "points").unwrap();
        assert!(again.warning.is_none());
    }

    #[test]
    fn a_stale_holder_is_taken_over_with_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("points.lock"),
            "pid 4194304 on host elsewhere\n",
        )
        .unwrap();
        let a = SweepLock::acquire(dir.path(), "points").unwrap();
        let w = a.warning.unwrap_or_default();
        assert!(
            w.contains("taking over the lock of pid 4194304 on host elsewhere"),
            "{w}"
        );
    }
}
