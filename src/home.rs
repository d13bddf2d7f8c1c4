//! Where the shipped workloads and architecture configs live.
//!
//! Names such as `cae_cnn` or `lu22_fixed` resolve to files under the accsim
//! home: the directory named by `ACCSIM_HOME`, else the nearest ancestor of
//! the current directory that has both `workloads/` and `arch_configs/`, else
//! the source tree this binary was built from. Paths are always used as given.

use std::path::{Path, PathBuf};

use crate::error::InputError;

fn is_home(dir: &Path) -> bool {
    dir.join("workloads").is_dir() && dir.join("arch_configs").is_dir()
}

/// The accsim home directory, if one can be found.
pub fn home_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("ACCSIM_HOME") {
        return Some(PathBuf::from(dir));
    }
    if let Ok(cwd) = std::env::current_dir() {
        for dir in cwd.ancestors() {
            if is_home(dir) {
                return Some(dir.to_path_buf());
            }
        }
    }
    let built = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    is_home(&built).then_some(built)
}

/// Shipped files of one kind (`workloads` or `arch_configs`), sorted by name.
pub fn shipped(kind: &str) -> Vec<PathBuf> {
    let Some(dir) = home_dir().map(|h| h.join(kind)) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// What a path that exists but is not a regular file is, for messages.
fn what_it_is(meta: &std::fs::Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_dir() {
        return "a directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if t.is_char_device() || t.is_block_device() {
            return "a device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    "not a regular file"
}

/// A path as given if it exists, else `<home>/<kind>/<name>.toml`.
pub fn resolve(name_or_path: &str, kind: &str, flag: &str) -> Result<PathBuf, InputError> {
    let p = Path::new(name_or_path);
    if let Ok(meta) = std::fs::metadata(p) {
        if meta.is_file() {
            return Ok(p.to_path_buf());
        }
        let expected = if flag == "check" {
            "a workload or architecture file, or a shipped name"
        } else if kind == "workloads" {
            "a workload file (.toml, .onnx or .csv) or a shipped workload name"
        } else {
            "an architecture .toml file or a shipped architecture name"
        };
        return Err(InputError::new(
            p,
            format!(
                "is {}, not a file (given to {flag}); valid: {expected}",
                what_it_is(&meta)
            ),
        ));
    }
    let looks_like_path = name_or_path.contains('/') || name_or_path.ends_with(".toml");
    if !looks_like_path && let Some(home) = home_dir() {
        let candidate = home.join(kind).join(format!("{name_or_path}.toml"));
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    let names: Vec<String> = shipped(kind)
        .iter()
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect();
    let valid = if names.is_empty() {
        format!("a path to a .toml file (no {kind}/ directory found; set ACCSIM_HOME)")
    } else {
        format!("a path to a .toml file or one of: {}", names.join(", "))
    };
    Err(InputError::new(
        name_or_path,
        format!("no such file or shipped name (given to {flag}); valid: {valid}"),
    ))
}
