//! The disk store behind `POST /images`: rasters under `<cache_dir>/images/`, each as
//! `<sha256>.<ext>` beside a `<sha256>.json` sidecar holding its description. Bounded by
//! `caches.image_store_bytes` (raster bytes); the least recently used image goes first. Use
//! (upload, `GET`, a segment request naming it) sets the raster file's mtime, so the order
//! survives a restart: at start the index is rebuilt from the directory, oldest mtime first.
//! Everything here touches the filesystem: call it from blocking threads only.
//!
//! Shared by replicas (`cluster.shared_dir`): every replica indexes what it stored or looked up,
//! and the directory is the truth. An id this replica has not indexed is looked up on disk (and
//! indexed); an indexed image whose file another replica deleted is dropped from the index and
//! looked up again; a removal deletes the files whoever stored them. Uploads are received under
//! a `.upload-*` name and renamed into place (the raster, then its sidecar), so another replica
//! never sees half a file, and eviction (which only deletes complete, indexed images) never
//! deletes a file being written. Leftovers (partial uploads, rasters without a sidecar) are
//! removed only once they are older than `leftover_age`: a younger one may be another
//! replica's upload in progress.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

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
    /// When this process last used it (set the file's mtime): a later mtime means another
    /// replica sharing the directory used it since.
    used: SystemTime,
}

struct Index {
    lru: LruCache<String, StoredImage>,
    bytes: u64,
    /// Images in use by running jobs ([`ImageStore::pin`]), with how many pins each: never
    /// evicted while pinned (the store may stay over its budget meanwhile).
    pins: HashMap<String, usize>,
}

/// Keeps a stored image from eviction while held (a job running on it); see
/// [`ImageStore::pin`].
pub struct ImagePin {
    index: Arc<Mutex<Index>>,
    id: String,
}

impl Drop for ImagePin {
    fn drop(&mut self) {
        let mut index = self.index.lock();
        if let Some(n) = index.pins.get_mut(&self.id) {
            *n -= 1;
            if *n == 0 {
                index.pins.remove(&self.id);
            }
        }
    }
}

/// The image store.
pub struct ImageStore {
    dir: PathBuf,
    budget: u64,
    /// Partial uploads and rasters without a sidecar younger than this are left alone.
    leftover_age: Duration,
    /// When leftovers were last swept (at most once per `leftover_age`, on insert).
    last_sweep: Mutex<SystemTime>,
    index: Arc<Mutex<Index>>,
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
        ImageStore::open_shared(dir, budget, Duration::ZERO)
    }

    /// Opens a store that other processes may write to at the same time (a shared volume):
    /// as [`ImageStore::open`], but partial uploads and rasters without a sidecar are removed
    /// only when older than `leftover_age` (younger ones may be uploads in progress elsewhere),
    /// at start and then at most once per `leftover_age` when an image is stored.
    pub fn open_shared(dir: PathBuf, budget: u64, leftover_age: Duration) -> ImageStore {
        let store = ImageStore {
            dir,
            budget,
            leftover_age,
            last_sweep: Mutex::new(SystemTime::now()),
            index: Arc::new(Mutex::new(Index {
                lru: LruCache::unbounded(),
                bytes: 0,
                pins: HashMap::new(),
            })),
        };
        if let Err(e) = store.rebuild() {
            tracing::warn!(dir = %store.dir.display(), error = %e, "image store: cannot read the directory");
        }
        store
    }

    /// Whether other processes share the directory (opened with [`ImageStore::open_shared`]).
    fn is_shared(&self) -> bool {
        !self.leftover_age.is_zero()
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
                self.remove_leftover(&path);
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
            self.remove_leftover(&path);
        }
        let evicted = evict(&mut index, self.budget, None, self.is_shared());
        drop(index);
        remove_files(&evicted);
        Ok(())
    }

    /// Removes a partial upload or a raster without its sidecar, unless it is younger than
    /// `leftover_age` (then it may be another replica's upload in progress).
    fn remove_leftover(&self, path: &Path) {
        if !self.leftover_age.is_zero() {
            let age = fs::metadata(path)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok());
            if age.is_none_or(|a| a < self.leftover_age) {
                return;
            }
        }
        tracing::info!(file = %path.display(), "image store: removing an unfinished upload");
        let _ = fs::remove_file(path);
    }

    /// Removes old leftovers (see [`ImageStore::remove_leftover`]) when the last sweep is
    /// `leftover_age` ago: a replica that crashed mid-upload on a shared volume left them, and
    /// replicas that never restart would otherwise keep them.
    fn sweep_leftovers(&self) {
        if self.leftover_age.is_zero() {
            return; // this process alone writes here: `rebuild` removed them at start
        }
        {
            let mut last = self.last_sweep.lock();
            if last.elapsed().is_ok_and(|e| e < self.leftover_age) {
                return;
            }
            *last = SystemTime::now();
        }
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        for path in entries.flatten().map(|e| e.path()) {
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            let orphan_raster = match name.split_once('.') {
                Some((id, ext)) => {
                    is_image_id(id)
                        && RASTER_EXTENSIONS.contains(&ext)
                        && !self.dir.join(format!("{id}.json")).exists()
                }
                None => false,
            };
            if name.starts_with(PARTIAL_PREFIX) || orphan_raster {
                self.remove_leftover(&path);
            }
        }
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
        let mtime = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        Some((
            mtime,
            StoredImage {
                path,
                bytes: meta.len(),
                description,
                used: mtime,
            },
        ))
    }

    /// A fresh path for an upload being received (in the store's directory, so that the
    /// finished file is renamed into place, never copied).
    pub fn partial_path(&self) -> PathBuf {
        self.dir
            .join(format!("{PARTIAL_PREFIX}{}", uuid::Uuid::new_v4().simple()))
    }

    /// The stored image `id`, marked as just used; `None` when there is none. An id not in the
    /// index is looked up in the directory (another replica may have stored it) and indexed;
    /// an indexed image whose file is gone (another replica removed it) leaves the index.
    pub fn get(&self, id: &str) -> Option<StoredImage> {
        if !is_image_id(id) {
            return None;
        }
        let indexed = self.index.lock().lru.get(id).cloned();
        if let Some(mut image) = indexed {
            if touch(&image.path) {
                image.used = SystemTime::now();
                if let Some(entry) = self.index.lock().lru.peek_mut(id) {
                    entry.used = image.used;
                }
                return Some(image);
            }
            self.forget(id);
        }
        self.adopt(id)
    }

    /// Keeps image `id` from eviction until the returned pin is dropped (a job that may read it
    /// for hours). On a shared directory this holds for this replica's evictions only. An
    /// explicit `DELETE /images/{id}` still removes it.
    pub fn pin(&self, id: &str) -> ImagePin {
        *self.index.lock().pins.entry(id.to_string()).or_default() += 1;
        ImagePin {
            index: self.index.clone(),
            id: id.to_string(),
        }
    }

    /// Drops `id` from the index (its files are gone, or about to go).
    fn forget(&self, id: &str) {
        let mut index = self.index.lock();
        if let Some(image) = index.lru.pop(id) {
            index.bytes -= image.bytes;
        }
    }

    /// Indexes image `id` found complete in the directory (stored by another replica), as the
    /// most recently used; evicts past the budget (never `id`).
    fn adopt(&self, id: &str) -> Option<StoredImage> {
        let (_, mut image) = self.load(id, &self.dir.join(format!("{id}.json")))?;
        if !touch(&image.path) {
            return None;
        }
        image.used = SystemTime::now();
        let evicted = {
            let mut index = self.index.lock();
            if let Some(old) = index.lru.put(id.to_string(), image.clone()) {
                index.bytes -= old.bytes; // a concurrent lookup of the same id
            }
            index.bytes += image.bytes;
            evict(&mut index, self.budget, Some(id), self.is_shared())
        };
        remove_files(&evicted);
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
            used: SystemTime::now(),
        };
        let evicted = {
            let mut index = self.index.lock();
            if let Some(old) = index.lru.put(id.clone(), image.clone()) {
                index.bytes -= old.bytes; // a concurrent upload of the same bytes
            }
            index.bytes += bytes;
            evict(&mut index, self.budget, Some(&id), self.is_shared())
        };
        remove_files(&evicted);
        self.sweep_leftovers();
        Ok((image, true))
    }

    /// Removes image `id`, also when another replica stored it; `false` when there was none
    /// (its files are gone).
    pub fn remove(&self, id: &str) -> bool {
        if !is_image_id(id) {
            return false;
        }
        self.forget(id);
        // The sidecar first: without it the image no longer exists for any replica.
        let mut found = fs::remove_file(self.dir.join(format!("{id}.json"))).is_ok();
        for ext in RASTER_EXTENSIONS {
            found |= fs::remove_file(self.dir.join(format!("{id}.{ext}"))).is_ok();
        }
        // Indexed here but without files: another replica removed it first (404 here too).
        found
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

/// Pops least recently used images until the bytes fit `budget`, never `keep` nor a pinned
/// image. In a `shared`
/// directory an image another replica used after this one did (a newer mtime) is kept, as the
/// most recently used: least recently used here is not least recently used in the cluster.
fn evict(index: &mut Index, budget: u64, keep: Option<&str>, shared: bool) -> Vec<StoredImage> {
    let mut evicted = Vec::new();
    // Each image is looked at once at most (spared ones go to the back of the queue).
    let mut candidates = index.lru.len();
    while index.bytes > budget && candidates > 0 {
        candidates -= 1;
        let Some((id, mut image)) = index.lru.pop_lru() else {
            break;
        };
        if Some(id.as_str()) == keep {
            // Only the new image is left and it fits the budget (checked before): keep it.
            index.lru.put(id, image);
            break;
        }
        if index.pins.contains_key(&id) {
            // A running job reads it: spared (to the back of the queue).
            index.lru.put(id, image);
            continue;
        }
        if shared {
            let mtime = fs::metadata(&image.path).and_then(|m| m.modified()).ok();
            if let Some(mtime) = mtime.filter(|t| *t > image.used + Duration::from_secs(1)) {
                image.used = mtime;
                index.lru.put(id, image);
                continue;
            }
        }
        index.bytes -= image.bytes;
        tracing::info!(image_id = %id, bytes = image.bytes, "image store: evicted (least recently used)");
        evicted.push(image);
    }
    evicted
}

/// Deletes the sidecar and raster of each image (the sidecar first: a replica looking the id
/// up then finds nothing rather than a raster without its description). A request still
/// reading a raster keeps its open file (the data goes when it closes it).
fn remove_files(images: &[StoredImage]) {
    for image in images {
        let _ = fs::remove_file(image.path.with_extension("json"));
        let _ = fs::remove_file(&image.path);
    }
}

/// Sets the file's mtime to now (its place in the least-recently-used order after a restart);
/// `false` when the file is gone.
fn touch(path: &Path) -> bool {
    match fs::File::options().append(true).open(path) {
        Ok(file) => {
            let _ = file.set_modified(SystemTime::now());
            true
        }
        Err(_) => false,
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
    fn a_pinned_image_is_not_evicted_until_its_pin_is_dropped() {
        let dir = temp_dir("pin");
        let store = ImageStore::open(dir.clone(), 250);
        assert!(put(&store, 1, 100));
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(put(&store, 2, 100));
        let pin = store.pin(&id(1));
        let second = store.pin(&id(1));
        // 1 is the least recently used but pinned: 2 goes instead.
        assert!(put(&store, 3, 100));
        assert!(store.get(&id(1)).is_some(), "pinned");
        assert!(store.get(&id(2)).is_none(), "evicted in its place");
        drop(pin);
        // Still pinned once: with 1 and 3 both over the budget, 3 goes.
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(put(&store, 4, 100));
        assert!(store.get(&id(1)).is_some(), "one pin is left");
        drop(second);
        std::thread::sleep(std::time::Duration::from_millis(20));
        store.get(&id(4));
        assert!(put(&store, 5, 100));
        assert!(
            store.get(&id(1)).is_none(),
            "unpinned, it is the least recently used"
        );
        let _ = fs::remove_dir_all(&dir);
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
    fn stores_sharing_a_directory_see_each_others_images_and_removals() {
        let dir = temp_dir("shared");
        let age = Duration::from_secs(3600);
        let a = ImageStore::open_shared(dir.clone(), 1000, age);
        let b = ImageStore::open_shared(dir.clone(), 1000, age);
        assert!(put(&a, 1, 100));
        // B has not indexed it: found in the directory, then indexed.
        let seen = b.get(&id(1)).expect("B finds A's image");
        assert_eq!(seen.description.image_id, id(1));
        assert_eq!(b.bytes(), 100);
        // The same bytes stored again on B are not new.
        assert!(!put(&b, 1, 100));
        // Removed on B (B indexed it) and on A (A did not know it was gone).
        assert!(b.remove(&id(1)));
        assert!(a.get(&id(1)).is_none());
        assert_eq!(a.bytes(), 0, "A dropped the vanished image from its index");
        // A removal of an image only the other store indexed still removes it.
        assert!(put(&a, 2, 100));
        assert!(b.remove(&id(2)));
        assert!(!b.remove(&id(2)));
        assert!(a.get(&id(2)).is_none());
        assert!(b.get("../../etc/passwd").is_none());
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_shared_store_spares_an_image_another_replica_used_since() {
        let dir = temp_dir("shared-evict");
        let a = ImageStore::open_shared(dir.clone(), 250, Duration::from_secs(3600));
        assert!(put(&a, 1, 100));
        assert!(put(&a, 2, 100));
        // Another replica uses image 1 (its mtime moves past A's last use of it).
        fs::File::options()
            .append(true)
            .open(dir.join(format!("{}.tif", id(1))))
            .unwrap()
            .set_modified(SystemTime::now() + Duration::from_secs(10))
            .unwrap();
        // Over the budget: 1 is least recently used for A, but not in the cluster; 2 goes.
        assert!(put(&a, 3, 100));
        assert!(dir.join(format!("{}.tif", id(1))).exists());
        assert!(!dir.join(format!("{}.tif", id(2))).exists());
        assert_eq!(a.bytes(), 200);
        // The same in a private store: plain least recently used.
        let private_dir = temp_dir("private-evict");
        let p = ImageStore::open(private_dir.clone(), 250);
        assert!(put(&p, 1, 100));
        assert!(put(&p, 2, 100));
        assert!(put(&p, 3, 100));
        assert!(p.get(&id(1)).is_none() && p.get(&id(2)).is_some());
        let _ = fs::remove_dir_all(&dir);
        let _ = fs::remove_dir_all(&private_dir);
    }

    #[test]
    fn a_shared_store_leaves_young_leftovers_to_their_writer() {
        let dir = temp_dir("leftovers");
        fs::create_dir_all(&dir).unwrap();
        let partial = dir.join(format!("{PARTIAL_PREFIX}elsewhere"));
        let orphan = dir.join(format!("{}.tif", id(3)));
        fs::write(&partial, b"being received").unwrap();
        fs::write(&orphan, b"renamed, sidecar next").unwrap();
        // Another replica starting now must not delete an upload in progress...
        drop(ImageStore::open_shared(
            dir.clone(),
            1000,
            Duration::from_secs(3600),
        ));
        assert!(partial.exists() && orphan.exists());
        // ...but once they are older than the leftover age, they are leftovers of a crash.
        let old = SystemTime::now() - Duration::from_secs(7200);
        for path in [&partial, &orphan] {
            fs::File::options()
                .append(true)
                .open(path)
                .unwrap()
                .set_modified(old)
                .unwrap();
        }
        drop(ImageStore::open_shared(
            dir.clone(),
            1000,
            Duration::from_secs(3600),
        ));
        assert!(!partial.exists() && !orphan.exists());
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn image_ids() {
        assert!(is_image_id(&id(7)));
        assert!(!is_image_id("../etc/passwd"));
        assert!(!is_image_id(&id(7).to_uppercase().replace('0', "A")));
    }
}
