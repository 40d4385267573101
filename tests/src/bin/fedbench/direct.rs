//! The benchmark's baseline and fault injection, installed in responders through
//! [`kith_node::PeerExtension`] — compiled into this benchmark only, never into `kith`.
//!
//! **Direct baseline.** Request frame: `MAGIC ‖ item` (UTF-8). Response frame: the
//! responder's input vector (spec §9.2), [`VECTOR_LEN`] little-endian u32 — in plain text,
//! the same consent-shaped vector it would otherwise hide inside the secure aggregate. It
//! is the cheapest protocol that gives the asker the same sum with no privacy at all.
//!
//! **Dropouts.** While a responder's `drop` flag is set it answers round 2 (`MaskInput`,
//! spec §9.8.2) with an empty frame, as if it had crashed after sharing its secrets: the
//! asker must then rebuild its masks from its neighbours' shares.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use kith_node::store::Store;
use kith_node::{Node, PeerExtension};
use kith_protocol::aggregation::input::{Contribution, VECTOR_LEN};
use kith_protocol::aggregation::messages::AggRequest;
use kith_protocol::wire::decode_message;
use kith_protocol::{ItemKey, NodeId, PeerRequest};
use tokio::task::JoinSet;

/// Marks a direct-baseline request; no kith message starts with these bytes.
pub const MAGIC: &[u8] = b"kith-bench-direct\0";

pub type Vector = [u32; VECTOR_LEN];

/// The extension for one responder: the direct baseline and the dropout switch.
pub fn extension(store: Arc<Store>, drop: Arc<AtomicBool>) -> PeerExtension {
    Arc::new(move |asker: NodeId, frame: &[u8]| {
        if let Some(item) = frame.strip_prefix(MAGIC) {
            return Some(answer(&store, &asker, item));
        }
        // Decode only while dropping, so as not to add to the responders' measured work.
        let round2 = drop.load(Ordering::Relaxed)
            && matches!(
                decode_message::<PeerRequest>(frame),
                Ok(PeerRequest::Aggregate(AggRequest::MaskInput { .. }))
            );
        round2.then(Vec::new)
    })
}

fn answer(store: &Store, asker: &NodeId, item: &[u8]) -> Vec<u8> {
    let vector = (|| {
        let item = ItemKey::parse(std::str::from_utf8(item).ok()?).ok()?;
        let circle = store.contact(asker).ok()??.circle;
        let (shelf, policy) = (store.endorsements().ok()?, store.policy().ok()?);
        Some(Contribution::from_shelf(&shelf, &policy, asker, &circle, &item).to_vector())
    })()
    .unwrap_or([0; VECTOR_LEN]);
    vector.iter().flat_map(|c| c.to_le_bytes()).collect()
}

/// Ask every contact in `contacts` directly and sum the vectors; `None` if any contact
/// failed or answered something that is not a vector.
pub async fn ask(node: Arc<Node>, contacts: Arc<Vec<NodeId>>, item: ItemKey) -> Option<Vector> {
    let mut frame = MAGIC.to_vec();
    frame.extend_from_slice(item.to_string().as_bytes());
    let frame = Arc::new(frame);
    let mut tasks = JoinSet::new();
    for &peer in contacts.iter() {
        let (node, frame) = (node.clone(), frame.clone());
        tasks.spawn(async move { node.exchange_with_contact(peer, &frame).await });
    }
    let mut sum = [0u32; VECTOR_LEN];
    let mut ok = true;
    while let Some(reply) = tasks.join_next().await {
        match reply {
            Ok(Ok(bytes)) if bytes.len() == 4 * VECTOR_LEN => {
                for (cell, chunk) in sum.iter_mut().zip(bytes.chunks_exact(4)) {
                    *cell = cell.wrapping_add(u32::from_le_bytes(chunk.try_into().ok()?));
                }
            }
            _ => ok = false,
        }
    }
    ok.then_some(sum)
}
