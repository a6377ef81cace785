//! The disk store behind `POST /images`: rasters under `<cache_dir>/images/`, each as
//! `<sha256>.<ext>` beside a `<sha256>.json` sidecar holding its description. Bounded by
//! `caches.image_store_bytes` (raster bytes); the least recently used image goes first. Use
//! (upload, `GET`, a segment request naming it) sets the raster file's mtime, so the order
//! survives a restart: at start the index is rebuilt from the directory, oldest mtime first.
//! Everything here touches the filesystem: call it from blocking threads only.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use lru::LruCache;
use parking_lot::Mutex;

use super::describe::ImageDescription;

/// Prefix of upload files still being received (removed at start: a crash left them).
pub const PARTIAL_PREFIX: &str = ".upload-";

/// One stored raster.
#[derive(Debug, Clone)]
pub struct StoredImage {
    /// The raster file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
    pub description: ImageDescription,
}

struct Index {
    lru: LruCache<String, StoredImage>,
    bytes: u64,
}

/// The image store.
pub struct ImageStore {
    dir: PathBuf,
    budget: u64,
    index: Mutex<Index>,
}

/// Why an image could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The image alone is larger than the store: 413.
    #[error("the image ({bytes} bytes) is larger than the image store (caches.image_store_bytes = {budget})")]
    TooLarge { bytes: u64, budget: u64 },
    /// A filesystem failure: 500.
    #[error("image store: {0}")]
    Io(String),
}

/// Whether `id` has the form of an image id (64 lowercase hex digits).
pub fn is_image_id(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl ImageStore {
    /// Opens the store in `dir` (created when missing), indexing the images already there and
    /// removing partial uploads and files without their pair. Images beyond `budget` (a smaller
    /// budget than last time) are evicted, oldest first.
    pub fn open(dir: PathBuf, budget: u64) -> ImageStore {
        let store = ImageStore {
            dir,
            budget,
            index: Mutex::new(Index {
                lru: LruCache::unbounded(),
                bytes: 0,
            }),
        };
        if let Err(e) = store.rebuild() {
            tracing::warn!(dir = %store.dir.display(), error = %e, "image store: cannot read the directory");
        }
        store
    }

    /// The directory the store writes to.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Bytes of rasters held now.
    pub fn bytes(&self) -> u64 {
        self.index.lock().bytes
    }

    fn rebuild(&self) -> std::io::Result<()> {
        fs::create_dir_all(&self.dir)?;
        let mut found: Vec<(SystemTime, StoredImage)> = Vec::new();
        let mut rasters: Vec<PathBuf> = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let path = entry?.path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_string();
            if name.starts_with(PARTIAL_PREFIX) {
                let _ = fs::remove_file(&path);
                continue;
            }
            match name.split_once('.') {
                Some((id, "json")) if is_image_id(id) => match self.load(id, &path) {
                    Some((mtime, image)) => found.push((mtime, image)),
                    None => {
                        tracing::warn!(file = %path.display(), "image store: dropping an unreadable entry");
                        let _ = fs::remove_file(&path);
                    }
                },
                _ => rasters.push(path),
            }
        }
        found.sort_by_key(|(mtime, _)| *mtime);
        let mut index = self.index.lock();
        for (_, image) in found {
            index.bytes += image.bytes;
            index.lru.put(image.description.image_id.clone(), image);
        }
        // Raster files whose sidecar is missing were never completed (or their pair was lost).
        let kept: std::collections::HashSet<PathBuf> =
            index.lru.iter().map(|(_, i)| i.path.clone()).collect();
        for path in rasters.into_iter().filter(|p| !kept.contains(p)) {
            let _ = fs::remove_file(path);
        }
        let evicted = evict(&mut index, self.budget, None);
        drop(index);
        remove_files(&evicted);
        Ok(())
    }

    /// Reads the sidecar at `json` and finds its raster.
    fn load(&self, id: &str, json: &Path) -> Option<(SystemTime, StoredImage)> {
        let description: ImageDescription = serde_json::from_slice(&fs::read(json).ok()?).ok()?;
        if description.image_id != id {
            return None;
        }
        let path = RASTER_EXTENSIONS
            .iter()
            .map(|ext| self.dir.join(format!("{id}.{ext}")))
            .find(|p| p.is_file())?;
        let meta = fs::metadata(&path).ok()?;
        Some((
            meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            StoredImage {
                path,
                bytes: meta.len(),
                description,
            },
        ))
    }

    /// A fresh path for an upload being received (in the store's directory, so that the
    /// finished file is renamed into place, never copied).
    pub fn partial_path(&self) -> PathBuf {
        self.dir
            .join(format!("{PARTIAL_PREFIX}{}", uuid::Uuid::new_v4().simple()))
    }

    /// The stored image `id`, marked as just used; `None` when there is none.
    pub fn get(&self, id: &str) -> Option<StoredImage> {
        let image = self.index.lock().lru.get(id).cloned()?;
        touch(&image.path);
        Some(image)
    }

    /// Moves the checked upload at `partial` into the store as `description.image_id` with
    /// extension `ext`, and evicts the least recently used images past the budget. Returns the
    /// stored image and whether it was new (`false`: the same bytes were stored already; the
    /// partial file is removed).
    pub fn insert(
        &self,
        partial: &Path,
        ext: &str,
        description: ImageDescription,
    ) -> Result<(StoredImage, bool), StoreError> {
        let id = description.image_id.clone();
        if let Some(existing) = self.get(&id) {
            let _ = fs::remove_file(partial);
            return Ok((existing, false));
        }
        let io = |what: &str, e: std::io::Error| StoreError::Io(format!("{what}: {e}"));
        let bytes = fs::metadata(partial)
            .map_err(|e| io("reading the upload", e))?
            .len();
        if bytes > self.budget {
            let _ = fs::remove_file(partial);
            return Err(StoreError::TooLarge {
                bytes,
                budget: self.budget,
            });
        }
        let path = self.dir.join(format!("{id}.{ext}"));
        let sidecar = self.dir.join(format!("{id}.json"));
        let sidecar_partial = self.partial_path();
        let json = serde_json::to_vec(&description).map_err(|e| StoreError::Io(e.to_string()))?;
        fs::write(&sidecar_partial, json).map_err(|e| io("writing the description", e))?;
        fs::rename(partial, &path).map_err(|e| io("storing the upload", e))?;
        touch(&path);
        // The sidecar last: a raster without one is removed at the next start.
        fs::rename(&sidecar_partial, &sidecar).map_err(|e| io("storing the description", e))?;
        let image = StoredImage {
            path,
            bytes,
            description,
        };
        let evicted = {
            let mut index = self.index.lock();
            if let Some(old) = index.lru.put(id.clone(), image.clone()) {
                index.bytes -= old.bytes; // a concurrent upload of the same bytes
            }
            index.bytes += bytes;
            evict(&mut index, self.budget, Some(&id))
        };
        remove_files(&evicted);
        Ok((image, true))
    }

    /// Removes image `id`; `false` when there was none.
    pub fn remove(&self, id: &str) -> bool {
        let removed = {
            let mut index = self.index.lock();
            let removed = index.lru.pop(id);
            if let Some(r) = &removed {
                index.bytes -= r.bytes;
            }
            removed
        };
        match removed {
            Some(image) => {
                remove_files(&[image]);
                true
            }
            None => false,
        }
    }
}

/// Extensions a stored raster may have (by driver: GTiff, PNG, JPEG).
const RASTER_EXTENSIONS: [&str; 3] = ["tif", "png", "jpg"];

/// The file extension for a raster read by GDAL driver `driver`.
pub fn extension_for(driver: &str) -> &'static str {
    match driver {
        "PNG" => "png",
        "JPEG" => "jpg",
        _ => "tif",
    }
}

/// Pops least recently used images until the bytes fit `budget`, never `keep`.
fn evict(index: &mut Index, budget: u64, keep: Option<&str>) -> Vec<StoredImage> {
    let mut evicted = Vec::new();
    while index.bytes > budget {
        let Some((id, image)) = index.lru.pop_lru() else {
            break;
        };
        if Some(id.as_str()) == keep {
            // Only the new image is left and it fits the budget (checked before): keep it.
            index.lru.put(id, image);
            break;
        }
        index.bytes -= image.bytes;
        tracing::info!(image_id = %id, bytes = image.bytes, "image store: evicted (least recently used)");
        evicted.push(image);
    }
    evicted
}

/// Deletes the raster and sidecar of each image. A request still reading a raster keeps its
/// open file (the data goes when it closes it).
fn remove_files(images: &[StoredImage]) {
    for image in images {
        let _ = fs::remove_file(&image.path);
        let _ = fs::remove_file(image.path.with_extension("json"));
    }
}

/// Sets the file's mtime to now (its place in the least-recently-used order after a restart).
fn touch(path: &Path) {
    if let Ok(file) = fs::File::options().append(true).open(path) {
        let _ = file.set_modified(SystemTime::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn description(id: &str) -> ImageDescription {
        ImageDescription {
            image_id: id.to_string(),
            width: 1,
            height: 1,
            band_count: 1,
            dtype: "Byte".into(),
            crs: None,
            bounds: None,
            bounds_wgs84: None,
        }
    }

    fn id(n: u8) -> String {
        format!("{:064x}", n)
    }

    fn put(store: &ImageStore, n: u8, bytes: usize) -> bool {
        let partial = store.partial_path();
        fs::write(&partial, vec![n; bytes]).unwrap();
        store
            .insert(&partial, "tif", description(&id(n)))
            .unwrap()
            .1
    }

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("samgeo-store-{}-{tag}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn least_recently_used_goes_first_and_the_index_survives_a_restart() {
        let dir = temp_dir("lru");
        let store = ImageStore::open(dir.clone(), 250);
        assert!(put(&store, 1, 100));
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(put(&store, 2, 100));
        assert!(!put(&store, 2, 100), "the same image again is not new");
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(store.get(&id(1)).is_some()); // 1 is now the most recently used
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(put(&store, 3, 100));
        assert!(store.get(&id(2)).is_none(), "2 was the least recently used");
        assert!(!dir.join(format!("{}.tif", id(2))).exists());
        assert_eq!(store.bytes(), 200);
        // A leftover partial upload and a raster without a sidecar are cleaned at start.
        fs::write(dir.join(format!("{PARTIAL_PREFIX}x")), b"x").unwrap();
        fs::write(dir.join(format!("{}.tif", id(9))), b"x").unwrap();
        drop(store);
        let reopened = ImageStore::open(dir.clone(), 250);
        assert_eq!(reopened.bytes(), 200);
        assert!(!dir.join(format!("{PARTIAL_PREFIX}x")).exists());
        assert!(!dir.join(format!("{}.tif", id(9))).exists());
        // The order came back from the mtimes: 1 (used before 3) goes first.
        assert!(put(&reopened, 4, 100));
        assert!(reopened.get(&id(1)).is_none());
        assert!(reopened.get(&id(3)).is_some() && reopened.get(&id(4)).is_some());
        assert!(reopened.remove(&id(3)));
        assert!(!reopened.remove(&id(3)));
        assert_eq!(reopened.bytes(), 100);
        let big = reopened.partial_path();
        fs::write(&big, vec![0u8; 300]).unwrap();
        assert!(matches!(
            reopened.insert(&big, "tif", description(&id(5))),
            Err(StoreError::TooLarge { .. })
        ));
        assert!(!big.exists());
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn image_ids() {
        assert!(is_image_id(&id(7)));
        assert!(!is_image_id("../etc/passwd"));
        assert!(!is_image_id(&id(7).to_uppercase().replace('0', "A")));
    }
}
