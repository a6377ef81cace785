//! Filter plugin: unique labels by area (the seed's save_masks) or one merged foreground mask
