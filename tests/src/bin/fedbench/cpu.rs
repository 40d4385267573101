//! CPU time of a set of threads (one tokio runtime's), and the process's peak memory, from
//! Linux's /proc. Per-thread accounting is what lets one process hold the asker and every
//! responder and still say what each side cost.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// CPU nanoseconds a thread has run, from `/proc/<path>/schedstat` (its first field).
fn schedstat_ns(path: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{path}/schedstat")).ok()?;
    text.split_whitespace().next()?.parse().ok()
}

fn current_tid() -> Option<u32> {
    let link = std::fs::read_link("/proc/thread-self").ok()?;
    link.file_name()?.to_str()?.parse().ok()
}

/// Whether this machine exposes what [`CpuMeter`] reads.
pub fn available() -> bool {
    schedstat_ns("thread-self").is_some() && current_tid().is_some()
}

/// Total CPU time of the threads registered with it, live or ended.
#[derive(Debug, Default, Clone)]
pub struct CpuMeter {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    live: Mutex<HashSet<u32>>,
    ended_ns: AtomicU64,
}

impl CpuMeter {
    /// Count the calling thread from now on (call first thing on a new thread).
    pub fn register_current(&self) {
        if let Some(tid) = current_tid() {
            self.live().insert(tid);
        }
    }

    /// The calling thread is ending: keep what it used.
    pub fn retire_current(&self) {
        let (Some(tid), Some(ns)) = (current_tid(), schedstat_ns("thread-self")) else {
            return;
        };
        if self.live().remove(&tid) {
            self.inner.ended_ns.fetch_add(ns, Ordering::Relaxed);
        }
    }

    fn live(&self) -> std::sync::MutexGuard<'_, HashSet<u32>> {
        self.inner.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// CPU nanoseconds used so far by every registered thread.
    pub fn total_ns(&self) -> u64 {
        let live: u64 = self
            .live()
            .iter()
            .filter_map(|tid| schedstat_ns(&format!("self/task/{tid}")))
            .sum();
        live + self.inner.ended_ns.load(Ordering::Relaxed)
    }
}

/// A multi-threaded tokio runtime whose threads (workers and blocking pool) `meter` counts.
///
/// The blocking pool is capped at `workers` threads too: kith runs each aggregation round's
/// crypto there, and a pool of hundreds of threads (tokio's default cap is 512) on a
/// 2-core machine would starve the QUIC tasks of every node in the process — its peers
/// would hear no acknowledgements and take it for dead.
pub fn metered_runtime(
    name: &str,
    workers: usize,
    meter: &CpuMeter,
) -> std::io::Result<tokio::runtime::Runtime> {
    let (start, stop) = (meter.clone(), meter.clone());
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .max_blocking_threads(workers)
        .thread_name(name)
        .enable_all()
        // Blocking threads keep their CPU time while alive; don't let them come and go.
        .thread_keep_alive(std::time::Duration::from_secs(3600))
        .on_thread_start(move || start.register_current())
        .on_thread_stop(move || stop.retire_current())
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_thread_is_counted() {
        if !available() {
            return;
        }
        let meter = CpuMeter::default();
        let m = meter.clone();
        std::thread::spawn(move || {
            m.register_current();
            let t = std::time::Instant::now();
            let mut x = 0u64;
            while t.elapsed() < std::time::Duration::from_millis(30) {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(1));
            }
            m.retire_current();
        })
        .join()
        .unwrap();
        assert!(meter.total_ns() >= 20_000_000, "{}", meter.total_ns());
        assert!(meter.live().is_empty());
    }
}
