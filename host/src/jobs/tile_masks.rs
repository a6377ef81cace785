//! A finished tile's masks as bytes for the store: postcard (a compact serde format already in
//! the build for wasmtime) over a mirror of [`Mask`]. The masks are already run-length encoded
//! inside their bounding boxes; postcard writes every integer as a varint, so a run of fewer
//! than 128 pixels takes one byte.

use serde::{Deserialize, Serialize};

use crate::masks::{BBox, Mask};

/// The stored form of one mask (field for field [`Mask`]).
#[derive(Serialize, Deserialize)]
struct StoredMask {
    id: u32,
    label: u32,
    score: f32,
    stability: f32,
    area: u64,
    bbox: (u32, u32, u32, u32),
    runs: Vec<u32>,
}

/// Encodes a tile's masks.
pub fn encode(masks: &[Mask]) -> Vec<u8> {
    let stored: Vec<StoredMask> = masks
        .iter()
        .map(|m| StoredMask {
            id: m.id,
            label: m.label,
            score: m.score,
            stability: m.stability,
            area: m.area,
            bbox: (m.bbox.x, m.bbox.y, m.bbox.width, m.bbox.height),
            runs: m.runs.clone(),
        })
        .collect();
    postcard::to_allocvec(&stored).unwrap_or_default()
}

/// Decodes what [`encode`] wrote; `None` for bytes it did not write.
pub fn decode(bytes: &[u8]) -> Option<Vec<Mask>> {
    let stored: Vec<StoredMask> = postcard::from_bytes(bytes).ok()?;
    Some(
        stored
            .into_iter()
            .map(|m| Mask {
                id: m.id,
                label: m.label,
                score: m.score,
                stability: m.stability,
                area: m.area,
                bbox: BBox {
                    x: m.bbox.0,
                    y: m.bbox.1,
                    width: m.bbox.2,
                    height: m.bbox.3,
                },
                runs: m.runs,
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_compactly() {
        let mut dense = vec![false; 40 * 30];
        for y in 5..20 {
            for x in 3..30 {
                dense[y * 40 + x] = true;
            }
        }
        let mask = Mask::from_dense(7, 0.9, 0.95, 40, 30, &dense).unwrap();
        let masks = vec![mask.clone(), Mask { id: 8, ..mask }];
        let bytes = encode(&masks);
        assert_eq!(decode(&bytes).unwrap(), masks);
        assert!(bytes.len() < 80, "{} bytes", bytes.len());
        assert_eq!(decode(&encode(&[])).unwrap(), vec![]);
        assert!(decode(&[0xff, 0xff]).is_none());
    }
}
