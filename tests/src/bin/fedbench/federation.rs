//! Setting up a benchmark federation: one asker and `n` responders, each a real node with
//! its own key, SQLite store and QUIC endpoint on 127.0.0.1, linked by invites, each
//! holding a known endorsement and consent rule so that every aggregate can be checked.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use kith_client::Client;
use kith_node::store::Store;
use kith_node::{DataDir, Node, NodeOptions};
use kith_protocol::aggregation::input::VECTOR_LEN;
use kith_protocol::{
    Endorsement, ItemKey, ItemPattern, NodeId, PolicyRule, Share, Subject, DEFAULT_CIRCLE,
};
use tokio::runtime::Handle;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::direct::{self, Vector};
use crate::progress::Progress;

/// What every ask asks about.
pub const ITEM: &str = "tag:bench/widget";
/// Nodes set up at once.
const SETUP_PARALLELISM: usize = 8;
/// Long enough for any round of a 1000-member cohort on a loaded 2-core machine.
const SESSION_LIFETIME: Duration = Duration::from_secs(300);

pub struct Responder {
    pub node: Node,
    pub id: NodeId,
    /// Its input vector as the seed defines it (independently of kith's code).
    pub truth: Vector,
    pub named: bool,
    pub drop: Arc<AtomicBool>,
}

pub struct Federation {
    pub asker: Arc<Node>,
    pub asker_client: Client,
    pub responders: Vec<Responder>,
    _tmp: tempfile::TempDir,
}

/// Responder `i`'s seed: what it owns and what its owner lets the `friends` circle see.
/// A fifth share by name, a fifth count-only, a fifth own but share `none`, the rest own
/// nothing; counts and ratings vary.
fn seed(i: usize) -> Option<(u32, Option<u8>, Share)> {
    let rating = (!i.is_multiple_of(3)).then_some(1 + (i / 5 % 5) as u8);
    match i % 5 {
        0 => Some((1 + (i % 3) as u32, rating, Share::Name)),
        1 => Some((2 + (i % 11) as u32, rating, Share::Count)),
        2 => Some((1, rating, Share::None)),
        _ => None,
    }
}

fn truth_of(seed: Option<(u32, Option<u8>, Share)>) -> Vector {
    let mut v = [0u32; VECTOR_LEN];
    if let Some((count, rating, share)) = seed {
        if share != Share::None {
            v[0] = 1;
            v[1] = count.min(10);
            if let Some(r) = rating {
                v[1 + r as usize] = 1;
            }
        }
    }
    v
}

fn init_node(root: &Path, name: &str) -> Result<DataDir> {
    let dir = DataDir::new(root.join(name));
    kith_node::init(&dir, name, "127.0.0.1:0".parse()?, vec![])?;
    Ok(dir)
}

/// Write responder `i`'s endorsement, consent rule and settings (noise off, so that
/// aggregates can be compared exactly; a budget no benchmark exhausts).
fn seed_store(store: &Store, i: usize) -> Result<()> {
    let item = ItemKey::parse(ITEM)?;
    if let Some((count, rating, share)) = seed(i) {
        store.put_endorsement(&Endorsement::new(
            item,
            count,
            rating,
            None,
            kith_node::unix_now(),
        )?)?;
        store.put_rule(&PolicyRule {
            subject: Subject::Circle(DEFAULT_CIRCLE.into()),
            items: ItemPattern::parse("tag:bench/*")?,
            share,
        })?;
    }
    store.set_setting(kith_node::store::Setting::Epsilon, "off")?;
    store.set_setting(kith_node::store::Setting::AsksPerDay, "100000")?;
    Ok(())
}

impl Federation {
    /// Start the asker on `asker_rt` and `n` responders on `responder_rt`, and link them.
    pub async fn start(n: usize, asker_rt: &Handle, responder_rt: &Handle) -> Result<Self> {
        let tmp = tempfile::Builder::new()
            .prefix("kith-fedbench-")
            .tempdir()?;
        let asker_dir = init_node(tmp.path(), "asker")?;
        let dir = asker_dir.clone();
        let asker = asker_rt
            .spawn(async move { Node::start(&dir, None).await })
            .await??;
        let asker_client = Client::connect_with(&asker_dir.load_owner_credential()?).await?;
        let asker_client = Arc::new(asker_client);

        let mut progress = Progress::new(format!("start and link {n} responders"), n);
        let slots = Arc::new(Semaphore::new(SETUP_PARALLELISM));
        let mut tasks = JoinSet::new();
        for i in 1..=n {
            let (slots, root, rt) = (slots.clone(), tmp.path().to_owned(), responder_rt.clone());
            let asker_client = asker_client.clone();
            tasks.spawn(async move {
                let _slot = slots.acquire_owned().await?;
                let r = start_responder(&root, i, &rt).await?;
                let owner = Client::connect_with(&r.1.load_owner_credential()?).await?;
                let invite = owner.create_invite(None).await?;
                owner.close().await;
                asker_client
                    .accept_invite(invite.code.0, None)
                    .await
                    .with_context(|| format!("linking responder {i}"))?;
                anyhow::Ok((i, r.0))
            });
        }
        let mut responders = Vec::with_capacity(n);
        while let Some(done) = tasks.join_next().await {
            responders.push(done??);
            progress.inc();
        }
        responders.sort_by_key(|(i, _)| *i);
        let asker_client = Arc::into_inner(asker_client).context("client still shared")?;
        Ok(Federation {
            asker: Arc::new(asker),
            asker_client,
            responders: responders.into_iter().map(|(_, r)| r).collect(),
            _tmp: tmp,
        })
    }

    /// The sum a correct aggregate over the responders not dropped equals.
    pub fn truth(&self, dropped: &[bool]) -> Vector {
        let mut sum = [0u32; VECTOR_LEN];
        for (r, _) in self.responders.iter().zip(dropped).filter(|(_, d)| !**d) {
            for (s, c) in sum.iter_mut().zip(r.truth) {
                *s += c;
            }
        }
        sum
    }

    pub fn ids(&self) -> Vec<NodeId> {
        self.responders.iter().map(|r| r.id).collect()
    }

    /// Bytes the asker has received from each responder so far, on the connection it holds.
    pub fn bytes_from_responders(&self) -> Vec<u64> {
        self.responders
            .iter()
            .map(|r| {
                self.asker
                    .connection_stats(&r.id)
                    .map_or(0, |s| s.udp_rx.bytes)
            })
            .collect()
    }

    /// Bytes of the frames every responder has sent in answers, summed.
    pub fn answered_bytes(&self) -> u64 {
        self.responders
            .iter()
            .map(|r| r.node.answered_bytes())
            .sum()
    }

    /// Public-key operations all responders have done.
    pub fn responder_work(&self) -> kith_protocol::aggregation::CryptoWork {
        let mut w = kith_protocol::aggregation::CryptoWork::default();
        for r in &self.responders {
            w += r.node.aggregation_work();
        }
        w
    }
}

async fn start_responder(root: &Path, i: usize, rt: &Handle) -> Result<(Responder, DataDir)> {
    let dir = init_node(root, &format!("responder-{i}"))?;
    let store = Arc::new(Store::open(&dir.database())?);
    seed_store(&store, i)?;
    let drop = Arc::new(AtomicBool::new(false));
    let options = NodeOptions {
        session_lifetime: SESSION_LIFETIME,
        peer_extension: Some(direct::extension(store, drop.clone())),
        ..NodeOptions::default()
    };
    let d = dir.clone();
    let node = rt
        .spawn(async move { Node::start_with(&d, None, options).await })
        .await??;
    let responder = Responder {
        id: node.node_id(),
        node,
        truth: truth_of(seed(i)),
        named: matches!(seed(i), Some((_, _, Share::Name))),
        drop,
    };
    Ok((responder, dir))
}
