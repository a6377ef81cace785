//! Replays every committed seed and regression input (and a local corpus, when one exists)
//! through the fuzz checks, on stable, without libFuzzer:
//! `cd fuzz && cargo test --no-default-features`.

use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut count = 0;
    for dir in ["seeds", "regressions", "corpus"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        let mut files: Vec<_> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        for file in files {
            let data = std::fs::read(&file).unwrap();
            eprintln!("{target}: {}", file.display());
            check(&data);
            count += 1;
        }
    }
    eprintln!("{target}: {count} inputs replayed");
}

#[test]
fn prompts() {
    replay("prompts", samgeo_fuzz::prompts);
}

#[test]
fn form_fields() {
    replay("form_fields", samgeo_fuzz::form_fields);
}

#[test]
fn raster_decode() {
    replay("raster_decode", samgeo_fuzz::raster_decode);
}
