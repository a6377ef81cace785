//! How a test that cannot run says so. Outside CI it prints a notice and records the skip in
//! the file named by `SAMGEO_SKIP_LOG` (one line each; `scripts/test` counts them in its summary).
//! Under CI (`CI=true`) what is missing is something `scripts/setup` installs, so the skip is a
//! failure: the test panics naming it.

use std::io::Write;

/// Skips the calling test because `reason` (what is missing, and how to get it).
#[doc(hidden)]
pub fn skip(test: &str, reason: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test}: {reason} (under CI a missing prerequisite is a failure: scripts/setup installs it)");
    }
    eprintln!("SKIPPED {test}: {reason}");
    if let Some(path) = std::env::var_os("SAMGEO_SKIP_LOG") {
        if let Ok(mut file) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(file, "{test}: {reason}");
        }
    }
}

/// `libonnxruntime` for tests: `ORT_DYLIB_PATH` (as `scripts/test` sets it), else the copy
/// `scripts/setup` makes in the workspace's `.ort/`.
#[doc(hidden)]
pub fn ort_library() -> std::path::PathBuf {
    std::env::var_os("ORT_DYLIB_PATH")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../.ort/libonnxruntime.so.1.31.1")
        })
}

/// The one ONNX Runtime of this test process (ONNX Runtime allows one environment per process,
/// so every unit test that runs a model shares it), CPU only; `None` when the library is
/// missing or does not load (the caller skips, naming `test`).
#[cfg(test)]
pub(crate) fn test_runtime(test: &str) -> Option<&'static crate::models::OnnxRuntime> {
    use std::sync::OnceLock;
    static RUNTIME: OnceLock<Result<crate::models::OnnxRuntime, String>> = OnceLock::new();
    let runtime = RUNTIME.get_or_init(|| {
        let config = crate::config::RuntimeConfig {
            onnxruntime_library: ort_library(),
            execution_providers: vec!["cpu".into()],
            intra_threads: 0,
            ..Default::default()
        };
        crate::models::OnnxRuntime::init(&config).map_err(|e| e.to_string())
    });
    match runtime {
        Ok(rt) => Some(rt),
        Err(e) => {
            skip(test, e);
            None
        }
    }
}
