//! An order-preserving parallel map on scoped threads: results come back in input order
//! whatever the thread count, so nothing downstream depends on scheduling.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Applies `f` to every item on up to `threads` threads; `out[i] = f(&items[i])`. Items are
/// handed out one at a time from a shared counter (they vary a lot in cost).
pub fn parallel_map<T, R, F>(items: &[T], threads: usize, f: F) -> Vec<R>
where
    T: Sync,
    R: Send,
    F: Fn(&T) -> R + Sync,
{
    let threads = threads.clamp(1, items.len().max(1));
    if threads == 1 {
        return items.iter().map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let mut pieces: Vec<(usize, R)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(i) else { break };
                        done.push((i, f(item)));
                    }
                    done
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| match w.join() {
                Ok(done) => done,
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    });
    pieces.sort_by_key(|(i, _)| *i);
    pieces.into_iter().map(|(_, r)| r).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_input_order() {
        let items: Vec<u64> = (0..1000).collect();
        let one = parallel_map(&items, 1, |&x| x * x);
        let four = parallel_map(&items, 4, |&x| x * x);
        assert_eq!(one, four);
        assert_eq!(four[999], 999 * 999);
        assert!(parallel_map(&Vec::<u8>::new(), 8, |&x| x).is_empty());
    }
}
