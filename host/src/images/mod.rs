//! Rasters that requests name instead of uploading: the disk store behind `POST /images`
//! (`image_id`), and rasters read in place (`source`).

pub mod describe;
pub mod source;
pub mod store;

pub use describe::{describe, ImageDescription};
pub use source::{check_source, source_key};
pub use store::{extension_for, is_image_id, ImagePin, ImageStore, StoreError, StoredImage};
