//! Test harness: real kith nodes in temporary directories on 127.0.0.1, driven through
//! kith-client exactly as apps drive them.

pub mod memory;
pub mod raw_asker;
pub mod stand_in;
pub mod vectors;

use std::net::SocketAddr;
use std::time::Duration;

use kith_client::transport::{self, ExchangeError};
use kith_client::Client;
use kith_node::{DataDir, Node, NodeOptions};
use kith_protocol::app::SubjectRef;
use kith_protocol::frame::MAX_PEER_FRAME;
use kith_protocol::{Identity, ItemKey, ItemPattern, NodeId, Share, ALPN_PEER, TLS_SERVER_NAME};

/// A node, its owner client, and its temporary data directory.
pub struct TestNode {
    pub node: Option<Node>,
    pub client: Client,
    pub dir: DataDir,
    pub name: String,
    pub options: NodeOptions,
    _tmp: tempfile::TempDir,
}

impl TestNode {
    /// Initialise and start a node named `name` on an ephemeral loopback port.
    pub async fn start(name: &str) -> TestNode {
        Self::start_with(name, NodeOptions::default()).await
    }

    /// [`TestNode::start`] with node options (kept across restarts).
    pub async fn start_with(name: &str, options: NodeOptions) -> TestNode {
        let tmp = tempfile::Builder::new()
            .prefix("kith-test-")
            .tempdir()
            .expect("tempdir");
        let dir = DataDir::new(tmp.path().join("node"));
        kith_node::init(&dir, name, "127.0.0.1:0".parse().unwrap(), vec![]).expect("init");
        let node = Node::start_with(&dir, None, options.clone())
            .await
            .expect("start");
        let client = Client::connect_with(&dir.load_owner_credential().unwrap())
            .await
            .expect("connect");
        TestNode {
            node: Some(node),
            client,
            dir,
            name: name.into(),
            options,
            _tmp: tmp,
        }
    }

    pub fn node(&self) -> &Node {
        self.node.as_ref().expect("node running")
    }

    pub fn id(&self) -> NodeId {
        self.node().node_id()
    }

    pub fn peer_addr(&self) -> SocketAddr {
        self.node().peer_addr()
    }

    /// The node's secret identity, read from its key file (to impersonate it in tests).
    pub fn identity(&self) -> Identity {
        self.dir.load_identity().expect("identity")
    }

    /// Stop the node (the data directory stays).
    pub async fn stop(&mut self) {
        if let Some(n) = self.node.take() {
            n.shutdown().await;
        }
    }

    /// Start the node again from its data directory, on `listen`.
    pub async fn restart(&mut self, listen: SocketAddr) {
        self.stop().await;
        self.node = Some(
            Node::start_with(&self.dir, Some(listen), self.options.clone())
                .await
                .expect("restart"),
        );
        self.client = Client::connect_with(&self.dir.load_owner_credential().unwrap())
            .await
            .expect("reconnect");
    }

    /// Record an endorsement.
    pub async fn endorse(&self, item: &str, count: u32, rating: Option<u8>, note: Option<&str>) {
        self.client
            .endorse(
                ItemKey::parse(item).unwrap(),
                count,
                rating,
                note.map(String::from),
            )
            .await
            .expect("endorse");
    }

    /// Set a rule for the `friends` circle.
    pub async fn share_with_friends(&self, items: &str, share: Share) {
        self.client
            .set_policy(
                SubjectRef::Circle("friends".into()),
                ItemPattern::parse(items).unwrap(),
                share,
            )
            .await
            .expect("policy");
    }
}

/// `inviter` invites `acceptor`, who accepts.
pub async fn link(inviter: &TestNode, acceptor: &TestNode) {
    let invite = inviter.client.create_invite(None).await.expect("invite");
    acceptor
        .client
        .accept_invite(invite.code.0, None)
        .await
        .expect("accept");
}

/// An asker, Ana, linked to `n` contacts F0..F(n-1) started with `options`; every node
/// has noise off, so that aggregates can be compared exactly.
pub async fn federation(n: usize, options: NodeOptions) -> (TestNode, Vec<TestNode>) {
    let ana = TestNode::start("Ana").await;
    ana.client.set_setting("epsilon", "off").await.unwrap();
    let mut friends = Vec::new();
    for i in 0..n {
        let f = TestNode::start_with(&format!("F{i}"), options.clone()).await;
        f.client.set_setting("epsilon", "off").await.unwrap();
        link(&ana, &f).await;
        friends.push(f);
    }
    (ana, friends)
}

/// A raw peer connection to `target` authenticated as `as_identity`.
pub async fn raw_peer(
    target: &TestNode,
    as_identity: &Identity,
) -> (quinn::Endpoint, quinn::Connection) {
    let endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    let cfg = transport::client_config(as_identity, target.id(), ALPN_PEER).unwrap();
    let conn = endpoint
        .connect_with(cfg, target.peer_addr(), TLS_SERVER_NAME)
        .unwrap()
        .await
        .expect("handshake");
    (endpoint, conn)
}

/// Send raw bytes (already framed) on a new stream and read one framed response.
pub async fn send_raw(conn: &quinn::Connection, bytes: &[u8]) -> Result<Vec<u8>, ExchangeError> {
    let (mut send, mut recv) = conn.open_bi().await?;
    let _ = send.write_all(bytes).await;
    let _ = send.finish();
    let r = tokio::time::timeout(
        Duration::from_secs(5),
        transport::read_frame(&mut recv, MAX_PEER_FRAME),
    )
    .await
    .expect("response within 5 s")?;
    Ok(r)
}
