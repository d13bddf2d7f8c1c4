//! `accsim list`.

use anyhow::Result;

/// The `description` of a shipped file, read without full validation so a
/// broken file still lists (with its error).
fn describe(path: &std::path::Path, section: &str) -> String {
    let Ok(text) = std::fs::read_to_string(path) else {
        return "(unreadable)".to_string();
    };
    let Ok(value) = text.parse::<toml::Table>() else {
        return "(invalid TOML: run `accsim check` on it)".to_string();
    };
    value
        .get(section)
        .and_then(|s| s.get("description"))
        .and_then(|d| d.as_str())
        .unwrap_or("(no description)")
        .to_string()
}

fn variants(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| t.parse::<toml::Table>().ok())
        .and_then(|v| {
            v.get("variants")
                .and_then(|v| v.as_table())
                .map(|t| t.keys().cloned().collect())
        })
        .unwrap_or_default()
}

pub fn execute() -> Result<()> {
    let Some(home) = accsim::home::home_dir() else {
        anyhow::bail!("no accsim home found: run from the repository or set ACCSIM_HOME");
    };
    outln!("workloads ({}):", home.join("workloads").display())?;
    for path in accsim::home::shipped("workloads") {
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let v = variants(&path);
        let v = if v.is_empty() {
            String::new()
        } else {
            format!(" [variants: {}]", v.join(", "))
        };
        outln!("  {name:<24} {}{v}", describe(&path, "network"))?;
    }
    outln!("arch configs ({}):", home.join("arch_configs").display())?;
    for path in accsim::home::shipped("arch_configs") {
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        outln!("  {name:<24} {}", describe(&path, "arch"))?;
    }
    Ok(())
}
