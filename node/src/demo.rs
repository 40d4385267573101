//! `kith demo`: a throwaway federation in one process, on 127.0.0.1, with temporary data
//! directories — real nodes, real QUIC, real SQLite — linked by invites, asked a question.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use kith_client::Client;
use kith_node::{DataDir, Node};
use kith_protocol::app::SubjectRef;
use kith_protocol::{ItemKey, ItemPattern, Share};

use crate::output::named_line;

const NAMES: &[&str] = &[
    "Ana", "Chloe", "Bruno", "Dev", "Emeka", "Farah", "Goran", "Hana", "Ines", "Jonas", "Kiri",
    "Lior", "Mei", "Nadia", "Omar", "Priya", "Quinn", "Rosa", "Sami", "Tomas",
];

/// Most nodes the demo will start.
pub const MAX_DEMO_NODES: usize = 200;

struct Member {
    node: Node,
    client: Client,
    name: String,
}

/// What a demo member owns and shares, so the narration can state the hidden truth.
struct Seed {
    item: &'static str,
    count: u32,
    rating: Option<u8>,
    note: Option<&'static str>,
    share: Share,
}

fn seed_for(i: usize) -> Option<Seed> {
    let s = |item, count, rating, note, share| {
        Some(Seed {
            item,
            count,
            rating,
            note,
            share,
        })
    };
    match i {
        1 => s(
            "tag:vehicle/subaru/outback",
            2,
            Some(5),
            Some("Great in snow"),
            Share::Name,
        ),
        2 => s("tag:vehicle/subaru/forester", 1, None, None, Share::Name),
        3 => s("isbn:9780441013593", 1, Some(5), None, Share::Name),
        i if i % 4 == 0 => s("tag:vehicle/subaru/impreza", 1, Some(4), None, Share::Count),
        i if i % 4 == 1 => s("tag:vehicle/toyota/prius", 1, Some(3), None, Share::Name),
        i if i % 4 == 2 => s(
            "tag:vehicle/subaru/outback",
            1,
            None,
            Some("private"),
            Share::None,
        ),
        _ => None,
    }
}

fn step(n: usize, what: &str, t: Instant) {
    println!(
        "  [{n}] {what:<52} {:>7.1} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );
}

pub async fn run(nodes: usize) -> Result<()> {
    if !(4..=MAX_DEMO_NODES).contains(&nodes) {
        bail!("--nodes must be between 4 and {MAX_DEMO_NODES}");
    }
    let tmp = tempfile::Builder::new()
        .prefix("kith-demo-")
        .tempdir()
        .context("creating a temporary directory")?;
    println!(
        "kith demo: {nodes} personal nodes on 127.0.0.1, data in {} (removed at the end)\n",
        tmp.path().display()
    );
    let total = Instant::now();
    let members = start_members(tmp.path(), nodes).await?;
    link(&members).await?;
    let truth = seed(&members).await?;

    let asker = &members[0];
    let asked = ItemKey::parse("tag:vehicle/subaru")?;
    let t = Instant::now();
    let answer = asker
        .client
        .ask(kith_client::Query::new(asked.clone()).timeout(Duration::from_secs(5)))
        .await?;
    step(
        4,
        &format!("{} asked: does anyone own a {}?", asker.name, asked),
        t,
    );
    for n in &answer.named {
        n.verify().context("a named endorsement failed to verify")?;
    }
    print_answer(&asker.name, &answer);
    print_truth(&asker.name, &truth, &asked);
    let audit = members[1].client.audit(1).await?;
    if let Some(a) = audit.first() {
        println!(
            "{}'s audit log: {} {} about {}: {}",
            members[1].name,
            a.event,
            asker.name,
            a.item.as_deref().unwrap_or("-"),
            a.detail
        );
    }

    let mut stopping = tokio::task::JoinSet::new();
    for m in members {
        stopping.spawn(async move {
            m.client.close().await;
            m.node.shutdown().await;
        });
    }
    while stopping.join_next().await.is_some() {}
    println!(
        "\nDone in {:.0} ms; all nodes stopped and their data removed.",
        total.elapsed().as_secs_f64() * 1000.0
    );
    Ok(())
}

/// Step 1: `nodes` nodes in `root`, each with its owner's client.
async fn start_members(root: &std::path::Path, nodes: usize) -> Result<Vec<Member>> {
    let t = Instant::now();
    let mut members = Vec::with_capacity(nodes);
    for i in 0..nodes {
        let name = NAMES
            .get(i)
            .map(|s| s.to_string())
            .unwrap_or_else(|| format!("Friend-{i}"));
        let dir = DataDir::new(root.join(format!("node-{i}")));
        kith_node::init(&dir, &name, "127.0.0.1:0".parse()?, vec![])?;
        let node = Node::start(&dir, None).await?;
        let cred = dir.load_owner_credential()?;
        let client = Client::connect_with(&cred).await?;
        members.push(Member { node, client, name });
    }
    step(
        1,
        &format!("started {nodes} nodes (init, keys, SQLite, QUIC)"),
        t,
    );
    Ok(members)
}

/// Step 2: the asker invites everyone, and they invite each other.
async fn link(members: &[Member]) -> Result<()> {
    let t = Instant::now();
    let (asker, others) = members.split_first().expect("at least 4 members");
    for m in others {
        let invite = asker.client.create_invite(None).await?;
        m.client.accept_invite(invite.code.0, None).await?;
    }
    // Ana's friends know each other too: each can then vouch for the others in Ana's
    // cohort and add only its share of the noise (spec §9.6.2), not a whole draw alone.
    let mut links = 0;
    for (i, a) in others.iter().enumerate() {
        for b in &others[i + 1..] {
            let invite = a.client.create_invite(None).await?;
            b.client.accept_invite(invite.code.0, None).await?;
            links += 1;
        }
    }
    step(
        2,
        &format!(
            "{} linked {} contacts, who know each other ({links} links)",
            asker.name,
            others.len()
        ),
        t,
    );
    Ok(())
}

/// Step 3: each member's endorsement and consent rule; returns who owns what, shared how.
async fn seed(members: &[Member]) -> Result<Vec<(String, ItemKey, Share)>> {
    let t = Instant::now();
    let vehicles = ItemPattern::parse("tag:vehicle/*")?;
    let mut truth = Vec::new();
    for (i, m) in members.iter().enumerate().skip(1) {
        if let Some(s) = seed_for(i) {
            let item = ItemKey::parse(s.item)?;
            m.client
                .endorse(item.clone(), s.count, s.rating, s.note.map(String::from))
                .await?;
            let pattern = if item.scheme() == kith_protocol::Scheme::Tag {
                vehicles.clone()
            } else {
                ItemPattern::Any
            };
            m.client
                .set_policy(SubjectRef::Circle("friends".into()), pattern, s.share)
                .await?;
            truth.push((m.name.clone(), item, s.share));
        }
    }
    step(
        3,
        &format!("seeded {} endorsements and consent rules", truth.len()),
        t,
    );
    Ok(truth)
}

/// What the asker learned: the count with its range, and the names.
fn print_answer(asker: &str, answer: &kith_protocol::app::AskResult) {
    println!(
        "\n{} asked {} contacts; {} answered in {} ms.",
        asker, answer.asked, answer.answered, answer.elapsed_ms
    );
    match (&answer.aggregate, &answer.withheld) {
        (Some(a), _) => println!(
            "Counted privately (secure aggregation: no single answer is visible):\n    {} own one ({})",
            kith_client::count_phrase(a, answer.survivors, answer.epsilon.is_none(), "contacts"),
            answer
                .epsilon
                .map(|m| format!("90 % range, ε = {}", m as f64 / 1000.0))
                .unwrap_or_else(|| "no noise: exact".into()),
        ),
        (None, Some(w)) => println!("Aggregate withheld: {w}"),
        (None, None) => {}
    }
    println!("Named ({}):", answer.named.len());
    if answer.named.is_empty() {
        println!("    nobody shared an endorsement by name");
    }
    for n in &answer.named {
        println!("    {}   (signature verified)", named_line(n));
    }
}

/// The seeded truth the asker could not see, to compare.
fn print_truth(asker: &str, truth: &[(String, ItemKey, Share)], asked: &ItemKey) {
    let owners: Vec<&(String, ItemKey, Share)> = truth
        .iter()
        .filter(|(_, item, share)| item.is_within(asked) && share.counts_in_aggregate())
        .collect();
    let hidden = truth
        .iter()
        .filter(|(_, item, share)| item.is_within(asked) && !share.counts_in_aggregate())
        .count();
    println!(
        "\nSeeded truth, hidden from {}: {} contacts own a Subaru and consented to be counted ({} of them by name);\n\
         {} more own one but chose `none`, and answered exactly like contacts who own nothing.",
        asker,
        owners.len(),
        owners.iter().filter(|(_, _, s)| s.names_to_asker()).count(),
        hidden
    );
}
