//! SAM3.

pub mod clip_tokenizer;
