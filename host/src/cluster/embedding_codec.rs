//! The byte form of an image embedding in the cluster's shared tier: a small versioned header
//! (image size, each tensor's name and shape) and the values as fp16, zstd-compressed.
//!
//! Layout (integers little-endian):
//!
//! ```text
//! "SGEM"  version:u8  width:u32  height:u32  tensors:u16
//!   per tensor: name_len:u16  name (UTF-8)  rank:u8  dims:u32 × rank
//! digest: the first 8 bytes of SHA-256 of everything above
//! one zstd frame (content size and checksum recorded): every tensor's values in order, as
//!   fp16 split into two byte planes (all low bytes, then all high bytes)
//! ```
//!
//! The byte planes let zstd find the redundancy of the high bytes (sign, exponent, top of the
//! mantissa), which interleaved with the near-random low bytes it mostly misses. Decoding
//! validates every part (the digest covers the header, zstd's checksum the values): truncated or
//! garbled bytes are an error, never a panic, and never allocate more than the header's
//! (bounded) sizes.

use half::f16;
use half::slice::HalfFloatSliceExt;
use ndarray::{ArrayD, IxDyn};
use sha2::{Digest, Sha256};

use crate::models::Embedding;

/// The first bytes of every encoded embedding.
pub const MAGIC: &[u8; 4] = b"SGEM";
/// The layout version this build writes and reads.
pub const VERSION: u8 = 1;
/// zstd level (see [`encode_with_level`] and the README: level 1 and 3 give sizes within a
/// fraction of a percent of each other on embeddings, and 1 is the faster).
pub const ZSTD_LEVEL: i32 = 1;

/// Most values an encoded embedding may hold (fp16: 512 MiB); a header above is refused.
const MAX_VALUES: u64 = 1 << 28;
const MAX_TENSORS: usize = 64;
const MAX_RANK: usize = 8;
const MAX_NAME_BYTES: usize = 256;
const DIGEST_BYTES: usize = 8;

/// Why an embedding could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The bytes are not an embedding this build reads (truncated, garbled, other version).
    #[error("not a valid encoded embedding: {0}")]
    Invalid(String),
    /// A finite value is too large for fp16; the embedding is not shared.
    #[error("tensor '{0}' holds a value outside the fp16 range")]
    OutOfRange(String),
    /// The embedding has more tensors, dimensions or values than the format allows.
    #[error("embedding too large to share: {0}")]
    TooLarge(String),
    /// zstd failed.
    #[error("zstd: {0}")]
    Zstd(#[from] std::io::Error),
}

fn invalid(what: impl Into<String>) -> CodecError {
    CodecError::Invalid(what.into())
}

/// `embedding` as bytes, at [`ZSTD_LEVEL`].
pub fn encode(embedding: &Embedding) -> Result<Vec<u8>, CodecError> {
    encode_with_level(embedding, ZSTD_LEVEL)
}

/// `embedding` as bytes, compressed at zstd `level`.
pub fn encode_with_level(embedding: &Embedding, level: i32) -> Result<Vec<u8>, CodecError> {
    if embedding.tensors.len() > MAX_TENSORS {
        return Err(CodecError::TooLarge(format!(
            "{} tensors",
            embedding.tensors.len()
        )));
    }
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.extend_from_slice(&embedding.width.to_le_bytes());
    out.extend_from_slice(&embedding.height.to_le_bytes());
    out.extend_from_slice(&(embedding.tensors.len() as u16).to_le_bytes());
    let mut total: u64 = 0;
    for (name, tensor) in &embedding.tensors {
        if name.len() > MAX_NAME_BYTES || tensor.ndim() > MAX_RANK {
            return Err(CodecError::TooLarge(format!("tensor '{name}'")));
        }
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        out.push(tensor.ndim() as u8);
        for &dim in tensor.shape() {
            let dim = u32::try_from(dim)
                .map_err(|_| CodecError::TooLarge(format!("tensor '{name}' dimension {dim}")))?;
            out.extend_from_slice(&dim.to_le_bytes());
        }
        total += tensor.len() as u64;
    }
    if total > MAX_VALUES {
        return Err(CodecError::TooLarge(format!("{total} values")));
    }
    let digest = Sha256::digest(&out);
    out.extend_from_slice(&digest[..DIGEST_BYTES]);
    let planes = byte_planes(embedding, total as usize)?;
    let mut compressor = zstd::bulk::Compressor::new(level)?;
    compressor.include_checksum(true)?;
    out.extend_from_slice(&compressor.compress(&planes)?);
    Ok(out)
}

/// Every tensor's values as fp16, low bytes then high bytes.
fn byte_planes(embedding: &Embedding, total: usize) -> Result<Vec<u8>, CodecError> {
    let mut planes = vec![0u8; total * 2];
    let (low, high) = planes.split_at_mut(total);
    let mut at = 0;
    let mut halves = Vec::new();
    for (name, tensor) in &embedding.tensors {
        let values: Vec<f32>;
        let values = match tensor.as_slice() {
            Some(values) => values,
            None => {
                // Not in standard order: copy it out in logical order.
                values = tensor.iter().copied().collect();
                &values
            }
        };
        halves.clear();
        halves.resize(values.len(), f16::ZERO);
        halves.convert_from_f32_slice(values);
        for (&h, &v) in halves.iter().zip(values) {
            if h.is_infinite() && v.is_finite() {
                return Err(CodecError::OutOfRange(name.clone()));
            }
        }
        for (i, h) in halves.iter().enumerate() {
            let [lo, hi] = h.to_bits().to_le_bytes();
            low[at + i] = lo;
            high[at + i] = hi;
        }
        at += halves.len();
    }
    Ok(planes)
}

/// The embedding `bytes` hold (values as f32, rounded to fp16 precision on the way).
pub fn decode(bytes: &[u8]) -> Result<Embedding, CodecError> {
    let mut reader = Reader { bytes, at: 0 };
    if reader.take(MAGIC.len())? != MAGIC {
        return Err(invalid("wrong magic"));
    }
    let version = reader.u8()?;
    if version != VERSION {
        return Err(invalid(format!(
            "layout version {version} (this build reads {VERSION})"
        )));
    }
    let width = reader.u32()?;
    let height = reader.u32()?;
    let count = reader.u16()? as usize;
    if count > MAX_TENSORS {
        return Err(invalid(format!("{count} tensors")));
    }
    let mut specs = Vec::with_capacity(count);
    let mut total: u64 = 0;
    for _ in 0..count {
        let name_len = reader.u16()? as usize;
        if name_len > MAX_NAME_BYTES {
            return Err(invalid(format!("a tensor name of {name_len} bytes")));
        }
        let name = std::str::from_utf8(reader.take(name_len)?)
            .map_err(|_| invalid("a tensor name is not UTF-8"))?
            .to_string();
        let rank = reader.u8()? as usize;
        if rank > MAX_RANK {
            return Err(invalid(format!("tensor '{name}' of rank {rank}")));
        }
        let mut shape = Vec::with_capacity(rank);
        let mut len: u64 = 1;
        for _ in 0..rank {
            let dim = reader.u32()?;
            len = len.saturating_mul(dim as u64);
            shape.push(dim as usize);
        }
        total = total.saturating_add(len);
        if total > MAX_VALUES {
            return Err(invalid(format!("more than {MAX_VALUES} values")));
        }
        specs.push((name, shape, len as usize));
    }
    let header_end = reader.at;
    let digest = Sha256::digest(&bytes[..header_end]);
    if reader.take(DIGEST_BYTES)? != &digest[..DIGEST_BYTES] {
        return Err(invalid("the header's digest does not match"));
    }
    let total = total as usize;
    let planes = zstd::bulk::Decompressor::new()?
        .decompress(reader.rest(), total * 2)
        .map_err(|e| invalid(format!("values: {e}")))?;
    if planes.len() != total * 2 {
        return Err(invalid(format!(
            "{} bytes of values where the header says {}",
            planes.len(),
            total * 2
        )));
    }
    let (low, high) = planes.split_at(total);
    let halves: Vec<f16> = low
        .iter()
        .zip(high)
        .map(|(&lo, &hi)| f16::from_bits(u16::from_le_bytes([lo, hi])))
        .collect();
    let mut tensors = Vec::with_capacity(specs.len());
    let mut at = 0;
    for (name, shape, len) in specs {
        let mut values = vec![0f32; len];
        halves[at..at + len].convert_to_f32_slice(&mut values);
        at += len;
        let tensor = ArrayD::from_shape_vec(IxDyn(&shape), values)
            .map_err(|e| invalid(format!("tensor '{name}': {e}")))?;
        tensors.push((name, tensor));
    }
    Ok(Embedding {
        tensors,
        width,
        height,
    })
}

/// A cursor over the bytes being decoded; running out is an error.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())
            .ok_or_else(|| invalid(format!("truncated at byte {}", self.bytes.len())))?;
        let taken = &self.bytes[self.at..end];
        self.at = end;
        Ok(taken)
    }

    fn u8(&mut self) -> Result<u8, CodecError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, CodecError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, CodecError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn rest(&self) -> &'a [u8] {
        &self.bytes[self.at..]
    }
}

#[cfg(test)]
#[path = "embedding_codec_tests.rs"]
mod tests;
