//! `include = ["models/*.toml", ...]` in samgeo.toml: other files merged into the configuration
//! (e.g. the fragments `scripts/export-models` writes). Patterns are relative to the including
//! file; `*` and `?` match within one path component (`models/*/samgeo.toml`). Included files are merged in order
//! (each pattern's matches sorted by name) after the including file: their keys override its
//! keys, and a `[models.<version>."<id>"]` entry they define replaces the whole entry (so an
//! exported model can take the place of a demo one). Relative paths in an included file are
//! relative to that file. An included file may not include others.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// Keys holding file paths, per section (models are handled separately).
const PATH_KEYS: [(&str, &str); 3] = [
    ("server", "cache_dir"),
    ("runtime", "onnxruntime_library"),
    ("plugins", "directory"),
];
/// Keys holding file paths in a model entry.
const MODEL_PATH_KEYS: [&str; 4] = ["encoder", "decoder", "language_encoder", "tokenizer_vocab"];

/// Removes `include` from `table` (the file at `path`) and merges the files it names.
pub fn merge_includes(table: &mut toml::Table, path: &Path) -> Result<()> {
    let Some(include) = table.remove("include") else {
        return Ok(());
    };
    let base = path.parent().unwrap_or(Path::new("."));
    let patterns = match include {
        toml::Value::Array(items) => items
            .into_iter()
            .map(|v| match v {
                toml::Value::String(s) => Ok(s),
                other => bail!("include: expected file names or patterns (strings), got {other}"),
            })
            .collect::<Result<Vec<String>>>()?,
        other => bail!("include: expected an array of file names or patterns, got {other}"),
    };
    for pattern in patterns {
        for file in expand(base, &pattern)? {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("include: reading {}", file.display()))?;
            let mut included = text
                .parse::<toml::Table>()
                .with_context(|| format!("include: parsing {}", file.display()))?;
            if included.contains_key("include") {
                bail!(
                    "include: {} includes other files; only the main configuration file may",
                    file.display()
                );
            }
            let dir = file.parent().unwrap_or(Path::new("."));
            absolutise_paths(&mut included, dir);
            merge(table, included, &file)?;
        }
    }
    Ok(())
}

/// The files `pattern` names, relative to `base`, sorted. `*` and `?` match within one path
/// component (any component). A pattern without wildcards must name an existing file; one
/// with wildcards may match nothing.
fn expand(base: &Path, pattern: &str) -> Result<Vec<PathBuf>> {
    let full = base.join(pattern);
    if !pattern.contains(['*', '?']) {
        if !full.is_file() {
            bail!("include: {} does not exist", full.display());
        }
        return Ok(vec![full]);
    }
    // Walk component by component; only components with wildcards list a directory.
    let mut current = vec![PathBuf::new()];
    let components: Vec<_> = full.components().collect();
    for (i, component) in components.iter().enumerate() {
        let last = i + 1 == components.len();
        let text = component.as_os_str().to_string_lossy();
        let mut next = Vec::new();
        for dir in &current {
            if !text.contains(['*', '?']) {
                next.push(dir.join(component));
                continue;
            }
            let Ok(entries) = std::fs::read_dir(if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir.as_path()
            }) else {
                continue;
            };
            for entry in entries.filter_map(|e| e.ok()) {
                let path = entry.path();
                let fits = if last { path.is_file() } else { path.is_dir() };
                if fits
                    && entry
                        .file_name()
                        .to_str()
                        .is_some_and(|n| wildcard_match(&text, n))
                {
                    next.push(dir.join(entry.file_name()));
                }
            }
        }
        current = next;
    }
    current.retain(|p| p.is_file());
    current.sort();
    Ok(current)
}

/// Shell-style match of `name` against `pattern` (`*`: any run of characters, `?`: one).
fn wildcard_match(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    // Hidden files only match a pattern that starts with a dot, as in a shell.
    if n.first() == Some(&'.') && p.first() != Some(&'.') {
        return false;
    }
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Makes the relative file paths of an included file absolute against its directory.
fn absolutise_paths(table: &mut toml::Table, dir: &Path) {
    let fix = |v: &mut toml::Value| {
        if let toml::Value::String(s) = v {
            if Path::new(s.as_str()).is_relative() {
                *s = dir.join(&*s).to_string_lossy().into_owned();
            }
        }
    };
    for (section, key) in PATH_KEYS {
        if let Some(v) = table
            .get_mut(section)
            .and_then(|s| s.as_table_mut())
            .and_then(|s| s.get_mut(key))
        {
            fix(v);
        }
    }
    let Some(models) = table.get_mut("models").and_then(|m| m.as_table_mut()) else {
        return;
    };
    for (_, ids) in models.iter_mut() {
        let Some(ids) = ids.as_table_mut() else {
            continue;
        };
        for (_, entry) in ids.iter_mut() {
            let Some(entry) = entry.as_table_mut() else {
                continue;
            };
            for key in MODEL_PATH_KEYS {
                if let Some(v) = entry.get_mut(key) {
                    fix(v);
                }
            }
        }
    }
}

/// Merges `from` (read from `file`) into `into`: sections key by key, model entries whole.
fn merge(into: &mut toml::Table, from: toml::Table, file: &Path) -> Result<()> {
    for (section, value) in from {
        let toml::Value::Table(from_section) = value else {
            into.insert(section, value);
            continue;
        };
        let target = into
            .entry(section.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        let Some(target) = target.as_table_mut() else {
            bail!(
                "include: [{section}] in {} is a table, but not in the including file",
                file.display()
            );
        };
        if section == "models" {
            for (version, ids) in from_section {
                let toml::Value::Table(ids) = ids else {
                    bail!(
                        "include: models.{version} in {} is not a table",
                        file.display()
                    );
                };
                let slot = target
                    .entry(version.clone())
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                let Some(slot) = slot.as_table_mut() else {
                    bail!("include: models.{version} is not a table in the including file");
                };
                for (id, entry) in ids {
                    slot.insert(id, entry);
                }
            }
        } else {
            for (key, v) in from_section {
                target.insert(key, v);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_like_a_shell() {
        assert!(wildcard_match("*.toml", "vit_b.toml"));
        assert!(wildcard_match("sam?.toml", "sam2.toml"));
        assert!(wildcard_match("a*b*c", "axxbyyc"));
        assert!(!wildcard_match("*.toml", "vit_b.toml.bak"));
        assert!(!wildcard_match("*.toml", ".hidden.toml"));
        assert!(wildcard_match("exact.toml", "exact.toml"));
        assert!(!wildcard_match("sam?.toml", "sam.toml"));
    }

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("samgeo-include-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("models")).unwrap();
        dir
    }

    #[test]
    fn included_model_replaces_entry_and_paths_follow_the_file() {
        let dir = scratch("merge");
        std::fs::write(
            dir.join("models/b.toml"),
            "[models.sam.vit_h]\nencoder = \"e.onnx\"\ndecoder = \"/abs/d.onnx\"\n[server]\nport = 9\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("models/a.toml"),
            "[server]\nport = 7\nhost = \"h\"\n",
        )
        .unwrap();
        std::fs::write(dir.join("models/skip.txt"), "not toml").unwrap();
        let mut table: toml::Table = "include = [\"models/*.toml\"]\n[server]\nport = 1\nmax_pixels = 5\n[models.sam.vit_h]\nencoder = \"x\"\ndecoder = \"y\"\ndemo = true\n"
            .parse()
            .unwrap();
        merge_includes(&mut table, &dir.join("samgeo.toml")).unwrap();
        assert!(!table.contains_key("include"));
        // a.toml then b.toml: b's port wins, a's host stays, the main file's max_pixels stays.
        assert_eq!(table["server"]["port"].as_integer(), Some(9));
        assert_eq!(table["server"]["host"].as_str(), Some("h"));
        assert_eq!(table["server"]["max_pixels"].as_integer(), Some(5));
        let vit_h = table["models"]["sam"]["vit_h"].as_table().unwrap();
        assert!(!vit_h.contains_key("demo"), "the entry is replaced whole");
        let enc = vit_h["encoder"].as_str().unwrap();
        assert_eq!(Path::new(enc), dir.join("models/e.onnx"));
        assert_eq!(vit_h["decoder"].as_str(), Some("/abs/d.onnx"));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn missing_literal_file_and_nested_include_are_errors() {
        let dir = scratch("errors");
        let cfg = dir.join("samgeo.toml");
        let mut t: toml::Table = "include = [\"models/none.toml\"]".parse().unwrap();
        let err = merge_includes(&mut t, &cfg).unwrap_err();
        assert!(format!("{err:#}").contains("none.toml"), "{err:#}");
        // A glob matching nothing is fine.
        let mut t: toml::Table = "include = [\"models/*.toml\"]".parse().unwrap();
        merge_includes(&mut t, &cfg).unwrap();
        std::fs::write(dir.join("models/n.toml"), "include = [\"x.toml\"]\n").unwrap();
        let mut t: toml::Table = "include = [\"models/*.toml\"]".parse().unwrap();
        let err = merge_includes(&mut t, &cfg).unwrap_err();
        assert!(format!("{err:#}").contains("only the main"), "{err:#}");
        // Wildcards in directory components: models/*/samgeo.toml.
        std::fs::create_dir_all(dir.join("models/vit_b")).unwrap();
        std::fs::write(dir.join("models/vit_b/samgeo.toml"), "[server]\nport = 3\n").unwrap();
        std::fs::remove_file(dir.join("models/n.toml")).unwrap();
        let mut t: toml::Table = "include = [\"models/*/samgeo.toml\"]".parse().unwrap();
        merge_includes(&mut t, &cfg).unwrap();
        assert_eq!(t["server"]["port"].as_integer(), Some(3));
        let mut t: toml::Table = "include = \"models/n.toml\"".parse().unwrap();
        assert!(merge_includes(&mut t, &cfg).is_err());
        std::fs::remove_dir_all(&dir).ok();
    }
}
