//! Following one answer: the named endorsements contacts approve after the ask finished
//! (consent `ask`, spec §8.5), as they arrive.
//!
//! The node keeps them (§8.5.3); [`Updates`] polls `ListUpdates` for one ask and yields each
//! new one once. Polling is cheap — one small request to your own node — and survives node
//! restarts through the client's reconnection.

use std::collections::HashSet;
use std::collections::VecDeque;
use std::time::Duration;

use kith_protocol::app::AnswerUpdate;
use kith_protocol::QueryId;

use crate::{Client, ClientError};

/// How often [`Updates`] asks the node by default.
pub const DEFAULT_POLL: Duration = Duration::from_secs(2);

/// The late named endorsements of one ask, in order of arrival. Create it with
/// [`Client::follow`]; call [`Updates::next`] in a loop, and drop it when done.
#[derive(Debug)]
pub struct Updates<'c> {
    client: &'c Client,
    query_id: QueryId,
    poll: Duration,
    seen: HashSet<(u64, Vec<u8>)>,
    ready: VecDeque<AnswerUpdate>,
    first: bool,
}

impl<'c> Updates<'c> {
    pub(crate) fn new(client: &'c Client, query_id: QueryId, poll: Duration) -> Self {
        Updates {
            client,
            query_id,
            poll,
            seen: HashSet::new(),
            ready: VecDeque::new(),
            first: true,
        }
    }

    /// The next update not yet yielded, waiting for one if needed. Updates that already
    /// arrived when following began come first. An error (the node unreachable for longer
    /// than the client's reconnection, the app revoked) ends nothing: call again to retry.
    pub async fn next(&mut self) -> Result<AnswerUpdate, ClientError> {
        loop {
            if let Some(u) = self.ready.pop_front() {
                return Ok(u);
            }
            if !self.first {
                tokio::time::sleep(self.poll).await;
            }
            self.first = false;
            let mut fresh = self.client.updates(Some(self.query_id)).await?;
            // The node lists newest first; yield in order of arrival.
            fresh.sort_by_key(|u| u.received_at);
            for u in fresh {
                let key = (u.received_at, u.named.signed.statement.clone());
                if self.seen.insert(key) {
                    self.ready.push_back(u);
                }
            }
        }
    }
}
