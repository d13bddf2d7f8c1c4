//! Atomic outputs (docs/testing.md, "Outputs and failures").
//!
//! Every final output (reports, CSVs, VCD traces, plots, dumps, sweep and
//! precision-study results) is written under a temporary name in its own
//! directory (`.NAME.XXXXXX`), flushed to disk, and renamed into place only
//! once complete. A reader, a crash or a full disk therefore sees the old
//! file or the new one, never a partial one; on any error the temporary is
//! removed (a SIGKILL can leave a hidden `.NAME.XXXXXX` behind, never a
//! partial `NAME`).
//!
//! Special files are written directly, since a rename would replace them
//! instead of feeding them: paths under `/dev/` and `/proc/` (`/dev/stdout`,
//! `/dev/full`) and existing files that are not regular files (FIFOs,
//! devices, sockets). A symbolic link is followed: its target is replaced.
//!
//! Errors name the final path (never the temporary) and the OS reason.

use std::fs::{File, Permissions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use tempfile::{NamedTempFile, TempDir, TempPath};

use crate::error::{Error, Result};

fn output_error(path: &Path, message: impl std::fmt::Display) -> Error {
    Error::Output {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

/// True for paths written directly rather than through a rename.
fn is_special(path: &Path) -> bool {
    if path.starts_with("/dev") || path.starts_with("/proc") {
        return true;
    }
    std::fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir())
}

/// Where the output really goes: the target of a symbolic link (so that the
/// rename replaces the file, not the link), else `path` itself.
fn resolved(path: &Path) -> PathBuf {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
        }
        _ => path.to_path_buf(),
    }
}

/// The directory that will hold `path` ("." for a bare file name).
fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Fails when an existing ancestor of `path`'s directory is a file, with a
/// message that says so rather than the OS's "File exists".
fn no_file_in_the_way(path: &Path) -> Result<()> {
    let parent = parent_of(path);
    if let Some(blocker) = parent
        .ancestors()
        .find(|a| !a.as_os_str().is_empty() && std::fs::metadata(a).is_ok())
        .filter(|a| !a.is_dir())
    {
        return Err(output_error(
            path,
            format!(
                "{} is a file, not a directory; valid: a path whose parent directories are \
                 directories (or do not exist yet)",
                blocker.display()
            ),
        ));
    }
    Ok(())
}

/// Checks, before any work, that a file can be written at `path` as far
/// as its name goes: not a directory, no file where a directory is needed.
pub fn check_target(path: &Path) -> Result<()> {
    let target = resolved(path);
    if is_special(&target) {
        return Ok(());
    }
    not_a_directory(path)?;
    no_file_in_the_way(path)
}

/// Creates the directory that will hold `path` and returns it.
pub fn prepare_parent(path: &Path) -> Result<PathBuf> {
    no_file_in_the_way(path)?;
    let parent = parent_of(path);
    std::fs::create_dir_all(&parent).map_err(|e| output_error(path, e))?;
    Ok(parent)
}

/// The temporary's name prefix: `.NAME.` (hidden, and recognisably ours).
fn temp_prefix(path: &Path) -> String {
    let name = path
        .file_name()
        .map_or_else(|| "output".into(), |n| n.to_string_lossy().into_owned());
    format!(".{name}.")
}

/// Rejects an output path that names an existing directory.
fn not_a_directory(path: &Path) -> Result<()> {
    if path.is_dir() {
        return Err(output_error(
            path,
            "is a directory; valid: a file name (e.g. DIR/report.json)",
        ));
    }
    Ok(())
}

/// A temporary in `path`'s directory, keeping `path`'s extension (plotters
/// picks the image format from it), with the usual permissions (0666 less
/// the umask, as a plain `File::create` gives).
fn temp_file(path: &Path) -> Result<NamedTempFile> {
    not_a_directory(path)?;
    let dir = prepare_parent(path)?;
    let suffix = path
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    let prefix = temp_prefix(path);
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(&suffix);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(Permissions::from_mode(0o666));
    }
    builder.tempfile_in(dir).map_err(|e| output_error(path, e))
}

/// Renames a complete temporary into place, keeping an existing file's
/// permissions. (Errors are the plain OS errors, which name no path: the
/// message names the user's.)
fn persist(file: &File, tmp: TempPath, path: &Path) -> Result<()> {
    if let Ok(m) = std::fs::metadata(path) {
        let _ = file.set_permissions(m.permissions());
    }
    file.sync_all().map_err(|e| output_error(path, e))?;
    tmp.persist(path).map_err(|e| output_error(path, e.error))
}

enum Sink {
    Temp(BufWriter<File>, TempPath),
    Direct(BufWriter<File>),
}

/// A file being written: under a temporary name until [`AtomicFile::commit`];
/// dropped without a commit, the temporary is removed.
pub struct AtomicFile {
    path: PathBuf,
    sink: Sink,
}

impl AtomicFile {
    /// Starts writing `path` (creating its parent directories).
    pub fn create(path: &Path) -> Result<AtomicFile> {
        let target = resolved(path);
        let sink = if is_special(&target) {
            let file = File::create(&target).map_err(|e| output_error(path, e))?;
            Sink::Direct(BufWriter::new(file))
        } else {
            let (file, tmp) = temp_file(&target)?.into_parts();
            Sink::Temp(BufWriter::new(file), tmp)
        };
        Ok(AtomicFile {
            path: path.to_path_buf(),
            sink,
        })
    }

    /// The path the output will have.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Flushes everything to disk and renames the file into place.
    pub fn commit(self) -> Result<()> {
        let path = self.path;
        match self.sink {
            Sink::Direct(mut w) => w.flush().map_err(|e| output_error(&path, e)),
            Sink::Temp(w, tmp) => {
                let file = w.into_inner().map_err(|e| output_error(&path, e.error()))?;
                persist(&file, tmp, &resolved(&path))
            }
        }
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match &mut self.sink {
            Sink::Temp(w, _) => w.write(buf),
            Sink::Direct(w) => w.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        match &mut self.sink {
            Sink::Temp(w, _) => w.write_all(buf),
            Sink::Direct(w) => w.write_all(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.sink {
            Sink::Temp(w, _) => w.flush(),
            Sink::Direct(w) => w.flush(),
        }
    }
}

/// Writes `bytes` to `path` atomically.
pub fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = AtomicFile::create(path)?;
    f.write_all(bytes).map_err(|e| output_error(path, e))?;
    f.commit()
}

/// Lets `draw` write `path` by name (a library that opens the file itself,
/// such as plotters), through a temporary with the same extension.
pub fn write_with<T>(path: &Path, draw: impl FnOnce(&Path) -> Result<T>) -> Result<T> {
    let target = resolved(path);
    if is_special(&target) {
        // Open it first, for the OS's reason when it cannot be written
        // (the drawing library would bury it in its own error).
        File::create(&target).map_err(|e| output_error(path, e))?;
        return draw(path);
    }
    let tmp = temp_file(&target)?;
    let value = draw(tmp.path()).map_err(|e| match e {
        // Name the user's path, not the temporary's.
        Error::Output { message, .. } => output_error(path, message),
        Error::Input(mut input) if input.file == tmp.path() => {
            input.file = path.to_path_buf();
            Error::Input(input)
        }
        other => other,
    })?;
    // The library wrote by name, through its own descriptor; this one's
    // `sync_all` flushes the same file's data to disk.
    let (file, tmp) = tmp.into_parts();
    persist(&file, tmp, &target)?;
    Ok(value)
}

/// A directory being filled: a temporary sibling (`.NAME.XXXXXX`) until
/// [`AtomicDir::commit`] renames it into place; dropped without a commit,
/// it is removed with everything in it.
pub struct AtomicDir {
    path: PathBuf,
    tmp: TempDir,
}

impl AtomicDir {
    /// Starts filling `path` (creating its parent directories). `path` may
    /// exist: [`AtomicDir::commit`] replaces it.
    pub fn create(path: &Path) -> Result<AtomicDir> {
        if path.exists() && !path.is_dir() {
            return Err(output_error(
                path,
                "exists and is not a directory; valid: a directory path",
            ));
        }
        let parent = prepare_parent(path)?;
        let prefix = temp_prefix(path);
        let mut builder = tempfile::Builder::new();
        builder.prefix(&prefix);
        #[cfg(unix)]
        {
            // What `mkdir` gives (0777 less the umask), not tempfile's 0700.
            use std::os::unix::fs::PermissionsExt;
            builder.permissions(Permissions::from_mode(0o777));
        }
        let tmp = builder
            .tempdir_in(parent)
            .map_err(|e| output_error(path, e))?;
        Ok(AtomicDir {
            path: path.to_path_buf(),
            tmp,
        })
    }

    /// Where to write the files now.
    pub fn temp_path(&self) -> &Path {
        self.tmp.path()
    }

    /// Renames the directory into place. An existing directory at the path
    /// is moved aside first and removed after the rename.
    pub fn commit(self) -> Result<()> {
        let path = &self.path;
        let fail = |e: std::io::Error| output_error(path, e);
        // Flush the files' data before the name appears.
        for entry in std::fs::read_dir(self.tmp.path()).map_err(fail)? {
            File::open(entry.map_err(fail)?.path())
                .and_then(|f| f.sync_all())
                .map_err(fail)?;
        }
        let old = if path.exists() {
            let aside = tempfile::Builder::new()
                .prefix(&format!("{}old.", temp_prefix(path)))
                .tempdir_in(prepare_parent(path)?)
                .map_err(fail)?;
            std::fs::rename(path, aside.path()).map_err(fail)?;
            Some(aside)
        } else {
            None
        };
        let tmp = self.tmp.keep();
        if let Err(e) = std::fs::rename(&tmp, path) {
            let _ = std::fs::remove_dir_all(&tmp);
            if let Some(old) = old {
                // Put the earlier directory back.
                let _ = std::fs::rename(old.keep(), path);
            }
            return Err(fail(e));
        }
        drop(old);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    #[test]
    fn a_file_appears_only_on_commit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        let mut f = AtomicFile::create(&path).unwrap();
        f.write_all(b"{}\n").unwrap();
        assert!(!path.exists());
        assert_eq!(names(dir.path()).len(), 1, "one hidden temporary");
        f.commit().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"{}\n");
        assert_eq!(names(dir.path()), vec!["r.json"]);
    }

    #[test]
    fn a_dropped_file_leaves_nothing_and_keeps_the_old_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        std::fs::write(&path, "old\n").unwrap();
        let mut f = AtomicFile::create(&path).unwrap();
        f.write_all(b"half").unwrap();
        drop(f);
        assert_eq!(std::fs::read(&path).unwrap(), b"old\n");
        assert_eq!(names(dir.path()), vec!["r.csv"]);
    }

    #[test]
    fn a_failed_draw_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.png");
        let e = write_with(&path, |tmp| {
            assert_eq!(tmp.extension().unwrap(), "png");
            std::fs::write(tmp, b"partial").unwrap();
            Err::<(), _>(output_error(tmp, "No space left on device (os error 28)"))
        })
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "cannot write {}: No space left on device (os error 28)",
                path.display()
            )
        );
        assert!(names(dir.path()).is_empty());
    }

    #[test]
    fn a_directory_replaces_the_earlier_one_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dump");
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("stale.npy"), "x").unwrap();
        let d = AtomicDir::create(&path).unwrap();
        std::fs::write(d.temp_path().join("a.npy"), "a").unwrap();
        assert_eq!(names(&path), vec!["stale.npy"]);
        d.commit().unwrap();
        assert_eq!(names(&path), vec!["a.npy"]);
        assert_eq!(names(dir.path()), vec!["dump"]);
        let d = AtomicDir::create(&dir.path().join("other")).unwrap();
        std::fs::write(d.temp_path().join("b.npy"), "b").unwrap();
        drop(d);
        assert_eq!(names(dir.path()), vec!["dump"]);
    }

    #[test]
    fn a_file_in_the_way_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("somefile");
        std::fs::write(&file, "x").unwrap();
        let e = write(&file.join("sub/r.json"), b"{}").unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "cannot write {}/sub/r.json: {} is a file, not a directory; valid: a path whose \
                 parent directories are directories (or do not exist yet)",
                file.display(),
                file.display()
            )
        );
        let e = write(dir.path(), b"{}").unwrap_err();
        assert!(
            e.to_string()
                .ends_with("is a directory; valid: a file name (e.g. DIR/report.json)")
        );
    }

    #[test]
    fn dev_full_is_written_directly_and_fails() {
        let e = write(Path::new("/dev/full"), b"x").unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot write /dev/full: No space left on device (os error 28)"
        );
    }
}
