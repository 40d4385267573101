//! The node's cancellation token: every long-running task holds a clone and stops when it
//! is cancelled, once, at shutdown.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::watch;

/// Cancelled once; clones see it at once.
#[derive(Debug, Clone)]
pub(crate) struct Shutdown {
    cancelled: Arc<watch::Sender<bool>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown {
            cancelled: Arc::new(watch::Sender::new(false)),
        }
    }
}

impl Shutdown {
    /// Cancel: every [`Shutdown::cancelled`] returns, now and later.
    pub(crate) fn cancel(&self) {
        self.cancelled.send_replace(true);
    }

    /// Ready once cancelled.
    pub(crate) async fn cancelled(&self) {
        let mut seen = self.cancelled.subscribe();
        // The sender lives in `self`, so waiting cannot fail.
        let _ = seen.wait_for(|cancelled| *cancelled).await;
    }

    /// Run `task` to its end, or until cancelled: `None` if cancelled first (or before).
    pub(crate) async fn run_until<F: Future>(&self, task: F) -> Option<F::Output> {
        tokio::select! {
            biased;
            () = self.cancelled() => None,
            out = task => Some(out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn cancelling_stops_waiters_now_and_later() {
        let shutdown = Shutdown::default();
        let clone = shutdown.clone();
        let waiter =
            tokio::spawn(async move { clone.run_until(std::future::pending::<()>()).await });
        shutdown.cancel();
        assert_eq!(waiter.await.unwrap(), None);
        // A task started after the cancel does not run.
        assert_eq!(shutdown.run_until(async { 1 }).await, None);
        shutdown.cancelled().await;
    }
}
