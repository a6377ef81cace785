//! Image embeddings keyed by model, image bytes and band options, bounded by bytes, least
//! recently used dropped first. Concurrent requests for the same uncached image encode it once.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use lru::LruCache;
use parking_lot::Mutex;

use crate::error::AppError;
use crate::models::Embedding;

/// What identifies an embedding.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EmbeddingKey {
    pub model_version: String,
    pub model_id: String,
    /// SHA-256 of the uploaded bytes, hex.
    pub image_sha256: String,
    /// Band selection and stretch options, as text.
    pub options: String,
}

type Slot = Arc<OnceLock<Result<Arc<Embedding>, AppError>>>;

struct Entries {
    lru: LruCache<EmbeddingKey, Arc<Embedding>>,
    bytes: u64,
}

/// Whether a failed computation failed because of the request that ran it (its time limit
/// passed: 504), rather than because of the image or the model: such a failure is not handed
/// to the other requests waiting for the same embedding.
fn owned_by_requester(error: &AppError) -> bool {
    error.status == axum::http::StatusCode::GATEWAY_TIMEOUT
}

/// The embedding cache.
pub struct EmbeddingCache {
    budget: u64,
    entries: Mutex<Entries>,
    computing: Mutex<HashMap<EmbeddingKey, Slot>>,
}

impl EmbeddingCache {
    /// A cache holding at most `budget` bytes of embeddings.
    pub fn new(budget: u64) -> EmbeddingCache {
        EmbeddingCache {
            budget,
            entries: Mutex::new(Entries {
                lru: LruCache::unbounded(),
                bytes: 0,
            }),
            computing: Mutex::new(HashMap::new()),
        }
    }

    /// The embedding for `key` and whether it was cached; computes it with `compute` (blocking)
    /// when absent. Callers asking for the same key meanwhile wait for that one computation and
    /// share its result, or its failure, except a failure that belongs to the request that
    /// computed ([`owned_by_requester`], its time limit): then a waiter computes it with its own
    /// `compute`, which checks its own time limit first.
    pub fn get_or_compute(
        &self,
        key: &EmbeddingKey,
        compute: impl FnOnce() -> Result<Embedding, AppError>,
    ) -> Result<(Arc<Embedding>, bool), AppError> {
        let mut compute = Some(compute);
        loop {
            if let Some(e) = self.entries.lock().lru.get(key) {
                crate::metrics::embedding_cache_lookup(true);
                return Ok((e.clone(), true));
            }
            let slot = self
                .computing
                .lock()
                .entry(key.clone())
                .or_default()
                .clone();
            let mut computed_here = false;
            let result = slot.get_or_init(|| {
                computed_here = true;
                match compute.take() {
                    Some(compute) => compute().map(Arc::new),
                    // Unreachable: a caller whose computation ran returns below.
                    None => Err(AppError::internal("embedding computed twice")),
                }
            });
            let outcome = match result {
                Ok(embedding) => {
                    if computed_here {
                        self.insert(key.clone(), embedding.clone());
                    }
                    Ok((embedding.clone(), !computed_here))
                }
                Err(e) => Err(e.clone()),
            };
            if computed_here || outcome.is_err() {
                // Done with this computation: the next caller starts a fresh one (unless
                // someone already has).
                let mut computing = self.computing.lock();
                if computing.get(key).is_some_and(|s| Arc::ptr_eq(s, &slot)) {
                    computing.remove(key);
                }
            }
            match outcome {
                Err(e) if !computed_here && owned_by_requester(&e) => continue,
                outcome => {
                    crate::metrics::embedding_cache_lookup(matches!(outcome, Ok((_, true))));
                    return outcome;
                }
            }
        }
    }

    fn insert(&self, key: EmbeddingKey, embedding: Arc<Embedding>) {
        let size = embedding.size_bytes();
        if size > self.budget {
            return;
        }
        let mut entries = self.entries.lock();
        if let Some(old) = entries.lru.put(key, embedding) {
            entries.bytes -= old.size_bytes();
        }
        entries.bytes += size;
        while entries.bytes > self.budget {
            match entries.lru.pop_lru() {
                Some((_, evicted)) => entries.bytes -= evicted.size_bytes(),
                None => break,
            }
        }
    }

    /// Bytes held now.
    pub fn bytes(&self) -> u64 {
        self.entries.lock().bytes
    }

    /// Number of embeddings held.
    pub fn len(&self) -> usize {
        self.entries.lock().lru.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops every embedding.
    pub fn clear(&self) {
        let mut entries = self.entries.lock();
        entries.lru.clear();
        entries.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn key(n: u8) -> EmbeddingKey {
        EmbeddingKey {
            model_version: "sam".into(),
            model_id: "vit_b".into(),
            image_sha256: format!("{n:02x}"),
            options: "default".into(),
        }
    }

    fn embedding(floats: usize) -> Embedding {
        Embedding {
            tensors: vec![(
                "e".into(),
                ndarray::ArrayD::zeros(ndarray::IxDyn(&[floats])),
            )],
            width: 1,
            height: 1,
        }
    }

    #[test]
    fn second_get_is_a_hit() {
        let cache = EmbeddingCache::new(1 << 20);
        let (_, hit) = cache.get_or_compute(&key(1), || Ok(embedding(10))).unwrap();
        assert!(!hit);
        let (_, hit) = cache
            .get_or_compute(&key(1), || panic!("must not recompute"))
            .unwrap();
        assert!(hit);
    }

    #[test]
    fn evicts_least_recently_used_past_budget() {
        let one = embedding(1000).size_bytes();
        let cache = EmbeddingCache::new(one * 2);
        for n in 0..3 {
            cache
                .get_or_compute(&key(n), || Ok(embedding(1000)))
                .unwrap();
        }
        assert_eq!(cache.len(), 2);
        assert!(cache.bytes() <= one * 2);
        let (_, hit) = cache
            .get_or_compute(&key(0), || Ok(embedding(1000)))
            .unwrap();
        assert!(!hit, "the oldest entry was evicted");
    }

    #[test]
    fn concurrent_requests_compute_once() {
        let cache = Arc::new(EmbeddingCache::new(1 << 20));
        let runs = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (cache, runs) = (cache.clone(), runs.clone());
                std::thread::spawn(move || {
                    cache
                        .get_or_compute(&key(9), || {
                            runs.fetch_add(1, Ordering::SeqCst);
                            std::thread::sleep(std::time::Duration::from_millis(100));
                            Ok(embedding(10))
                        })
                        .unwrap();
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }

    /// One request's time limit passes while it computes: a request waiting for the same
    /// embedding, whose own limit has not passed, computes it itself instead of receiving the
    /// other's 504.
    #[test]
    fn a_waiter_does_not_inherit_another_requests_timeout() {
        let cache = Arc::new(EmbeddingCache::new(1 << 20));
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let first = {
            let cache = cache.clone();
            std::thread::spawn(move || {
                cache.get_or_compute(&key(7), || {
                    started_tx.send(()).unwrap();
                    // Long enough for the second request to be waiting on this computation.
                    std::thread::sleep(std::time::Duration::from_millis(300));
                    Err(AppError::new(
                        axum::http::StatusCode::GATEWAY_TIMEOUT,
                        "The request took longer than the server's limit of 1 s",
                    ))
                })
            })
        };
        started_rx.recv().unwrap();
        let runs = AtomicUsize::new(0);
        let (second, hit) = cache
            .get_or_compute(&key(7), || {
                runs.fetch_add(1, Ordering::SeqCst);
                Ok(embedding(10))
            })
            .expect("the waiter computes the embedding itself");
        assert!(!hit);
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(second.tensors[0].1.len(), 10);
        assert_eq!(first.join().unwrap().unwrap_err().status, 504);
        // And it is cached for the next one.
        let (_, hit) = cache
            .get_or_compute(&key(7), || panic!("must not recompute"))
            .unwrap();
        assert!(hit);
    }
}
