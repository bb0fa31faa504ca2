//! Running work on one of rayon's threads. Every parallel op (ours and Flex's) splits its work
//! over rayon's global pool. Called from a thread outside the pool, each op hands its work to
//! a sleeping pool thread and puts the caller to sleep until it is done, two wake-ups per op;
//! called from a pool thread, an op queues half its work for the other threads and does the
//! rest itself. A model runs hundreds of small parallel ops per input, so callers that loop
//! over a model (a command, the service's workers) run it through [`on_pool`]
//! (docs/architecture.md, "Threads").

/// Runs `work` on one of rayon's global threads when the pool has more than one, the calling
/// thread waiting; with one thread it stays on the caller (a job that blocked the pool's only
/// thread while waiting on another thread that uses the pool would wait forever). `work` must
/// not wait on other threads that need the pool.
pub fn on_pool<T: Send>(work: impl FnOnce() -> T + Send) -> T {
    if rayon::current_num_threads() > 1 {
        rayon::scope(|_| work())
    } else {
        work()
    }
}

#[cfg(test)]
mod tests {
    use super::on_pool;

    #[test]
    fn work_runs_on_the_pool_when_it_has_more_than_one_thread() {
        assert_eq!(rayon::current_thread_index(), None, "the test runs outside");
        let inside = on_pool(rayon::current_thread_index);
        assert_eq!(inside.is_some(), rayon::current_num_threads() > 1);
        // The work may borrow from the caller and use the pool itself.
        let values: Vec<u64> = (1..=1000).collect();
        let sum: u64 = on_pool(|| {
            use rayon::prelude::*;
            values.par_iter().sum()
        });
        assert_eq!(sum, 500_500);
    }
}
