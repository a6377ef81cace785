//! The `source` input: a raster read in place from a local path or a GDAL virtual path
//! (`/vsicurl/https://...`, `/vsis3/...`), allowed only under the operator's
//! `[inputs] allowed_sources` prefixes, and the key its embeddings are cached under.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::AppError;

/// Checks `source` against the allowed prefixes: none configured → 400 "source inputs are
/// disabled"; a `..` segment, a control character, or no matching prefix → 400. A local path is
/// also resolved (symbolic links followed) and must still lie under a local prefix. Returns the
/// path to open.
pub fn check_source(allowed: &[String], source: &str) -> Result<PathBuf, AppError> {
    if allowed.is_empty() {
        return Err(AppError::bad_request(
            "source inputs are disabled on this server (the operator lists allowed prefixes in [inputs] allowed_sources); send the raster as `file` or `image_id`",
        ));
    }
    let source = source.trim();
    if source.chars().any(char::is_control) {
        return Err(AppError::bad_request("source contains control characters"));
    }
    if source.split(['/', '\\']).any(|segment| segment == "..") {
        return Err(AppError::bad_request(format!(
            "source '{source}' contains a '..' segment; give the path without it"
        )));
    }
    let Some(prefix) = allowed.iter().find(|p| under(source, p)) else {
        return Err(AppError::bad_request(format!(
            "source '{source}' is not under a prefix this server allows (see [inputs] allowed_sources)"
        )));
    };
    if source.starts_with("/vsi") {
        return Ok(PathBuf::from(source));
    }
    // A local path: a symbolic link must not lead out of the allowed directory.
    let resolved = std::fs::canonicalize(source)
        .map_err(|e| AppError::bad_request(format!("Cannot open source '{source}': {e}")))?;
    let root = std::fs::canonicalize(prefix).unwrap_or_else(|_| PathBuf::from(prefix));
    if !resolved.starts_with(&root) {
        return Err(AppError::bad_request(format!(
            "source '{source}' leads outside the allowed prefix '{prefix}'"
        )));
    }
    Ok(resolved)
}

/// Whether `source` lies under `prefix`: it starts with it, and the prefix ends at a path
/// separator (so that `/data` does not allow `/database`).
fn under(source: &str, prefix: &str) -> bool {
    if prefix.is_empty() {
        return false;
    }
    match source.strip_prefix(prefix) {
        Some(rest) => prefix.ends_with('/') || rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

/// The embedding-cache key of a source, hex SHA-256 over its path, size and modification time
/// as GDAL reports them (`VSIStatL`: a local file's metadata; for `/vsicurl/` the HTTP
/// `Content-Length` and `Last-Modified`; for `/vsis3/` the object's size and date). A file
/// rewritten in place therefore gets a new key; one whose size and time stay the same does not.
/// 400 when GDAL cannot stat it.
pub fn source_key(path: &Path) -> Result<String, AppError> {
    let (size, mtime) = stat(path).ok_or_else(|| {
        AppError::bad_request(format!(
            "Cannot open source '{}': not found or not readable",
            path.display()
        ))
    })?;
    let mut hash = Sha256::new();
    hash.update(b"source\0");
    hash.update(path.to_string_lossy().as_bytes());
    hash.update(format!("\0{size}\0{mtime}").as_bytes());
    Ok(hex::encode(hash.finalize()))
}

/// Size and modification time (seconds) of `path` through GDAL's virtual file system.
fn stat(path: &Path) -> Option<(u64, i64)> {
    let c_path = std::ffi::CString::new(path.to_str()?).ok()?;
    // SAFETY: VSIStatBufL is the C library's `struct stat64` (gdal-sys leaves it opaque);
    // VSIStatL fills the zeroed struct it is given and reads the NUL-terminated path.
    unsafe {
        let mut buf: libc::stat64 = std::mem::zeroed();
        let ptr = (&mut buf as *mut libc::stat64).cast::<gdal_sys::VSIStatBufL>();
        if gdal_sys::VSIStatL(c_path.as_ptr(), ptr) != 0 {
            return None;
        }
        Some((buf.st_size as u64, buf.st_mtime))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_and_traversal() {
        let dir = std::env::temp_dir().join(format!("samgeo-source-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("in")).unwrap();
        std::fs::write(dir.join("in/a.tif"), b"x").unwrap();
        std::fs::write(dir.join("secret.tif"), b"y").unwrap();
        let prefix = format!("{}/in", dir.display());
        let allowed = vec![prefix.clone(), "/vsicurl/http://127.0.0.1:1/".to_string()];
        let ok = check_source(&allowed, &format!("{prefix}/a.tif")).unwrap();
        assert!(ok.ends_with("in/a.tif"));
        assert!(source_key(&ok).unwrap().len() == 64);
        let bad = |s: String, want: &str| {
            let e = check_source(&allowed, &s).unwrap_err();
            assert_eq!(e.status, 400, "{s}");
            assert!(e.detail.contains(want), "{s}: {}", e.detail);
        };
        bad(format!("{prefix}/../secret.tif"), "'..'");
        bad(
            format!("{}/secret.tif", dir.display()),
            "not under a prefix",
        );
        bad(format!("{prefix}x/a.tif"), "not under a prefix");
        bad(
            "/vsicurl/http://elsewhere/a.tif".into(),
            "not under a prefix",
        );
        bad(format!("{prefix}/missing.tif"), "Cannot open source");
        #[cfg(unix)]
        {
            let link = dir.join("in/link.tif");
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink(dir.join("secret.tif"), &link).unwrap();
            bad(format!("{prefix}/link.tif"), "leads outside");
        }
        assert!(check_source(&allowed, "/vsicurl/http://127.0.0.1:1/x.tif").is_ok());
        let e = check_source(&[], "/data/a.tif").unwrap_err();
        assert!(
            e.detail.contains("source inputs are disabled"),
            "{}",
            e.detail
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
