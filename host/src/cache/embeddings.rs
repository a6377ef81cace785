//! Image embeddings keyed by model, image bytes and band options, bounded by bytes, least
//! recently used dropped first. Concurrent requests for the same uncached image encode it once.
//! In a cluster, the cluster's shared tier ([`SharedEmbeddings`], Redis) sits under this cache:
//! an embedding absent here is looked up there before it is encoded, and stored there after.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use lru::LruCache;
use parking_lot::Mutex;

use super::held_embedding::{EmbeddingPrecision, HeldEmbedding};
use crate::cluster::shared_embeddings::{Obtained, SharedEmbeddings};
use crate::error::AppError;
use crate::models::Embedding;
use crate::pipeline::Deadline;

/// Where a request's embedding came from (`X-Samgeo-Cache`, the access log's `cache`, the
/// `outcome` label of the cache metric). Ordered from cheapest to costliest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CacheOutcome {
    /// This replica's cache held it (or another request of this replica just made it).
    Hit,
    /// Another replica had encoded it: read from the cluster's Redis (fp16-rounded).
    Shared,
    /// Encoded for this request.
    Miss,
}

impl CacheOutcome {
    /// `hit`, `shared` or `miss`.
    pub fn as_str(self) -> &'static str {
        match self {
            CacheOutcome::Hit => "hit",
            CacheOutcome::Shared => "shared",
            CacheOutcome::Miss => "miss",
        }
    }

    /// The outcome of a request that needed both embeddings: the costlier of the two (any
    /// miss is a miss; hits and shared hits make a shared hit).
    pub fn and(self, other: CacheOutcome) -> CacheOutcome {
        std::cmp::max(self, other)
    }
}

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

/// One computation in flight: the embedding and where the computing request got it.
type Slot = Arc<OnceLock<Result<(Arc<Embedding>, CacheOutcome), AppError>>>;

struct Entries {
    lru: LruCache<EmbeddingKey, HeldEmbedding>,
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
    /// The cluster's tier under this one; `None` on a single node.
    shared: Option<SharedEmbeddings>,
    /// How embeddings are held (`[caches] embedding_precision`).
    precision: EmbeddingPrecision,
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
            shared: None,
            precision: EmbeddingPrecision::F32,
        }
    }

    /// This cache holding its embeddings at `precision`.
    pub fn with_precision(mut self, precision: EmbeddingPrecision) -> EmbeddingCache {
        self.precision = precision;
        self
    }

    /// This cache over the cluster's shared tier (`None`: alone).
    pub fn with_shared(mut self, shared: Option<SharedEmbeddings>) -> EmbeddingCache {
        self.shared = shared;
        self
    }

    /// The embedding for `key` and where it came from: this cache ([`CacheOutcome::Hit`]),
    /// the cluster's shared tier (`Shared`), or `compute` (blocking; `Miss`). Callers asking
    /// for the same key meanwhile wait for that one computation and share its result (as a
    /// hit), or its failure, except a failure that belongs to the request that computed
    /// ([`owned_by_requester`], its time limit): then a waiter computes it with its own
    /// `compute`, which checks its own time limit first. `deadline` bounds the wait for another
    /// replica's encode.
    pub fn get_or_compute(
        &self,
        key: &EmbeddingKey,
        deadline: &Deadline,
        compute: impl FnOnce() -> Result<Embedding, AppError>,
    ) -> Result<(Arc<Embedding>, CacheOutcome), AppError> {
        let mut compute = Some(compute);
        loop {
            let held = self.entries.lock().lru.get(key).cloned();
            if let Some(held) = held {
                crate::metrics::embedding_cache_lookup(CacheOutcome::Hit);
                return Ok((held.embedding(), CacheOutcome::Hit));
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
                    Some(compute) => self.obtain(key, deadline, compute),
                    // Unreachable: a caller whose computation ran returns below.
                    None => Err(AppError::internal("embedding computed twice")),
                }
            });
            let outcome = match result {
                Ok((embedding, obtained)) => {
                    if computed_here {
                        self.insert(key.clone(), embedding.clone());
                        Ok((embedding.clone(), *obtained))
                    } else {
                        Ok((embedding.clone(), CacheOutcome::Hit))
                    }
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
                    crate::metrics::embedding_cache_lookup(
                        outcome.as_ref().map_or(CacheOutcome::Miss, |(_, o)| *o),
                    );
                    return outcome;
                }
            }
        }
    }

    /// An embedding absent here: from the shared tier, or computed (and stored there).
    fn obtain(
        &self,
        key: &EmbeddingKey,
        deadline: &Deadline,
        compute: impl FnOnce() -> Result<Embedding, AppError>,
    ) -> Result<(Arc<Embedding>, CacheOutcome), AppError> {
        let Some(shared) = &self.shared else {
            return compute().map(|e| (Arc::new(e), CacheOutcome::Miss));
        };
        Ok(match shared.get_or_compute(key, deadline, compute)? {
            Obtained::Shared(e) => (Arc::new(e), CacheOutcome::Shared),
            Obtained::Encoded(e) => (Arc::new(e), CacheOutcome::Miss),
        })
    }

    fn insert(&self, key: EmbeddingKey, embedding: Arc<Embedding>) {
        let held = HeldEmbedding::hold(&embedding, self.precision);
        let size = held.size_bytes();
        if size > self.budget {
            return;
        }
        let mut entries = self.entries.lock();
        if let Some(old) = entries.lru.put(key, held) {
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

    fn deadline() -> Deadline {
        Deadline::after(std::time::Duration::from_secs(60))
    }

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
        let (_, outcome) = cache
            .get_or_compute(&key(1), &deadline(), || Ok(embedding(10)))
            .unwrap();
        assert_eq!(outcome, CacheOutcome::Miss);
        let (_, outcome) = cache
            .get_or_compute(&key(1), &deadline(), || panic!("must not recompute"))
            .unwrap();
        assert_eq!(outcome, CacheOutcome::Hit);
    }

    #[test]
    fn evicts_least_recently_used_past_budget() {
        let one = embedding(1000).size_bytes();
        let cache = EmbeddingCache::new(one * 2);
        for n in 0..3 {
            cache
                .get_or_compute(&key(n), &deadline(), || Ok(embedding(1000)))
                .unwrap();
        }
        assert_eq!(cache.len(), 2);
        assert!(cache.bytes() <= one * 2);
        let (_, outcome) = cache
            .get_or_compute(&key(0), &deadline(), || Ok(embedding(1000)))
            .unwrap();
        assert_eq!(outcome, CacheOutcome::Miss, "the oldest entry was evicted");
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
                        .get_or_compute(&key(9), &deadline(), || {
                            runs.fetch_add(1, Ordering::SeqCst);
                            std::thread::sleep(std::time::Duration::from_millis(100));
                            Ok(embedding(10))
                        })
                        .unwrap()
                        .1
                })
            })
            .collect();
        let outcomes: Vec<CacheOutcome> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        // The one that computed says miss; those that waited for it got it from this cache.
        let misses = outcomes
            .iter()
            .filter(|o| **o == CacheOutcome::Miss)
            .count();
        assert_eq!(misses, 1, "{outcomes:?}");
        assert!(outcomes.iter().all(|o| *o != CacheOutcome::Shared));
    }

    #[test]
    fn a_request_of_several_embeddings_is_as_costly_as_its_costliest() {
        use CacheOutcome::*;
        assert_eq!(Hit.and(Hit), Hit);
        assert_eq!(Hit.and(Shared), Shared);
        assert_eq!(Shared.and(Hit), Shared);
        assert_eq!(Shared.and(Miss), Miss);
        assert_eq!(Miss.and(Hit), Miss);
        assert_eq!(
            [Hit, Shared, Miss].map(CacheOutcome::as_str),
            ["hit", "shared", "miss"]
        );
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
                cache.get_or_compute(&key(7), &deadline(), || {
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
        let (second, outcome) = cache
            .get_or_compute(&key(7), &deadline(), || {
                runs.fetch_add(1, Ordering::SeqCst);
                Ok(embedding(10))
            })
            .expect("the waiter computes the embedding itself");
        assert_eq!(outcome, CacheOutcome::Miss);
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(second.tensors[0].1.len(), 10);
        assert_eq!(first.join().unwrap().unwrap_err().status, 504);
        // And it is cached for the next one.
        let (_, outcome) = cache
            .get_or_compute(&key(7), &deadline(), || panic!("must not recompute"))
            .unwrap();
        assert_eq!(outcome, CacheOutcome::Hit);
    }
}
