//! How the embedding cache holds an embedding: as computed (f32), or rounded to fp16 (half the
//! bytes, so twice the images in the same `embedding_cache_bytes`) and widened back to f32 for
//! each request that uses it (`[caches] embedding_precision`).

use std::sync::Arc;

use half::f16;
use half::slice::HalfFloatSliceExt;
use ndarray::{ArrayD, IxDyn};
use serde::Deserialize;

use crate::models::Embedding;

/// `[caches] embedding_precision`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmbeddingPrecision {
    /// As the encoder computed them (4 bytes a value).
    #[default]
    F32,
    /// Rounded to IEEE half precision (2 bytes a value; relative error ≤ 2⁻¹¹).
    F16,
}

/// One tensor rounded to fp16.
struct HalfTensor {
    name: String,
    shape: Vec<usize>,
    values: Vec<f16>,
}

/// An embedding as the cache holds it.
#[derive(Clone)]
pub enum HeldEmbedding {
    /// The encoder's values, shared with the requests that use them.
    Full(Arc<Embedding>),
    /// fp16 values, widened for each use.
    Half(Arc<HalfEmbedding>),
}

/// An embedding rounded to fp16.
pub struct HalfEmbedding {
    tensors: Vec<HalfTensor>,
    width: u32,
    height: u32,
}

impl HeldEmbedding {
    /// Holds `embedding` at `precision`.
    pub fn hold(embedding: &Arc<Embedding>, precision: EmbeddingPrecision) -> HeldEmbedding {
        match precision {
            EmbeddingPrecision::F32 => HeldEmbedding::Full(embedding.clone()),
            EmbeddingPrecision::F16 => HeldEmbedding::Half(Arc::new(HalfEmbedding {
                tensors: embedding
                    .tensors
                    .iter()
                    .map(|(name, t)| {
                        let mut values = vec![f16::ZERO; t.len()];
                        match t.as_slice() {
                            Some(slice) => values.convert_from_f32_slice(slice),
                            None => {
                                for (v, x) in values.iter_mut().zip(t.iter()) {
                                    *v = f16::from_f32(*x);
                                }
                            }
                        }
                        HalfTensor {
                            name: name.clone(),
                            shape: t.shape().to_vec(),
                            values,
                        }
                    })
                    .collect(),
                width: embedding.width,
                height: embedding.height,
            })),
        }
    }

    /// The embedding for a request: shared as is (f32), or widened from fp16 into new f32
    /// tensors (blocking: about a millisecond per million values).
    pub fn embedding(&self) -> Arc<Embedding> {
        match self {
            HeldEmbedding::Full(e) => e.clone(),
            HeldEmbedding::Half(h) => Arc::new(Embedding {
                tensors: h
                    .tensors
                    .iter()
                    .map(|t| {
                        let mut values = vec![0f32; t.values.len()];
                        t.values.convert_to_f32_slice(&mut values);
                        let array = ArrayD::from_shape_vec(IxDyn(&t.shape), values)
                            .expect("the shape was taken from these values");
                        (t.name.clone(), array)
                    })
                    .collect(),
                width: h.width,
                height: h.height,
            }),
        }
    }

    /// Bytes held, for the cache's budget.
    pub fn size_bytes(&self) -> u64 {
        match self {
            HeldEmbedding::Full(e) => e.size_bytes(),
            HeldEmbedding::Half(h) => {
                h.tensors
                    .iter()
                    .map(|t| (t.values.len() * std::mem::size_of::<f16>()) as u64)
                    .sum::<u64>()
                    + 64
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn embedding() -> Arc<Embedding> {
        let values: Vec<f32> = (0..2 * 3 * 4).map(|i| (i as f32 - 10.0) * 0.37).collect();
        Arc::new(Embedding {
            tensors: vec![
                (
                    "a".into(),
                    ArrayD::from_shape_vec(IxDyn(&[2, 3, 4]), values).unwrap(),
                ),
                ("b".into(), ArrayD::from_elem(IxDyn(&[5]), 1.0e-3)),
            ],
            width: 7,
            height: 9,
        })
    }

    #[test]
    fn f32_is_shared_as_is() {
        let e = embedding();
        let held = HeldEmbedding::hold(&e, EmbeddingPrecision::F32);
        assert!(Arc::ptr_eq(&held.embedding(), &e));
        assert_eq!(held.size_bytes(), e.size_bytes());
    }

    #[test]
    fn f16_takes_half_the_bytes_and_rounds_within_half_precision() {
        let e = embedding();
        let held = HeldEmbedding::hold(&e, EmbeddingPrecision::F16);
        assert_eq!(held.size_bytes() - 64, (e.size_bytes() - 64) / 2);
        let back = held.embedding();
        assert_eq!((back.width, back.height), (7, 9));
        assert_eq!(back.tensors.len(), 2);
        for ((name, a), (back_name, b)) in e.tensors.iter().zip(&back.tensors) {
            assert_eq!(name, back_name);
            assert_eq!(a.shape(), b.shape());
            for (x, y) in a.iter().zip(b.iter()) {
                assert!((x - y).abs() <= x.abs() * 2f32.powi(-11), "{x} → {y}");
            }
        }
    }

    #[test]
    fn precision_is_read_from_lowercase_names() {
        #[derive(Deserialize)]
        struct Holder {
            p: EmbeddingPrecision,
        }
        let f16: Holder = toml::from_str("p = \"f16\"").unwrap();
        assert_eq!(f16.p, EmbeddingPrecision::F16);
        assert!(toml::from_str::<Holder>("p = \"bf16\"").is_err());
    }
}
