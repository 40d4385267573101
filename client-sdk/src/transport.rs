//! QUIC and TLS plumbing shared by apps and nodes (spec §4): RFC 7250 raw Ed25519 public
//! keys on both sides, pinned; no certificate authority, no X.509.
//!
//! Apps rarely need this module directly: [`crate::Client`] uses it. `kith-node` uses its
//! client side for peer connections too, so that both sides of every connection verify keys
//! the same way; the server side (accepting any client key) lives in the node.

use std::sync::Arc;
use std::time::Duration;

use kith_protocol::frame::{body_len, encode_frame, FRAME_HEADER_LEN};
use kith_protocol::{Identity, NodeId};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls13_signature_with_raw_key, CryptoProvider};
use rustls::pki_types::{
    CertificateDer, PrivatePkcs8KeyDer, ServerName, SubjectPublicKeyInfoDer, UnixTime,
};
use rustls::sign::CertifiedKey;
use rustls::{CertificateError, DigitallySignedStruct, Error as TlsError, SignatureScheme};

/// QUIC application close code: the peer's key is not allowed here (spec §4.4).
pub const CLOSE_UNAUTHORIZED: u32 = 0x10;
/// QUIC application close code: orderly shutdown.
pub const CLOSE_SHUTDOWN: u32 = 0x00;

/// The ring crypto provider, TLS 1.3 only.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// This identity's key as a rustls raw-public-key [`CertifiedKey`].
pub fn certified_key(identity: &Identity) -> Result<Arc<CertifiedKey>, TlsError> {
    let der = identity.ed25519_pkcs8_der();
    let key = rustls::crypto::ring::sign::any_eddsa_type(&PrivatePkcs8KeyDer::from(der.to_vec()))?;
    let spki = CertificateDer::from(identity.node_id().to_spki_der());
    Ok(Arc::new(CertifiedKey::new(vec![spki], key)))
}

/// Check a TLS 1.3 handshake signature made with the raw Ed25519 key in `cert` (spec
/// §4.2); both sides of every kith connection verify with this.
pub fn verify_sig(
    provider: &CryptoProvider,
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
) -> Result<HandshakeSignatureValid, TlsError> {
    if NodeId::from_spki_der(cert.as_ref()).is_none() {
        return Err(TlsError::InvalidCertificate(CertificateError::BadEncoding));
    }
    verify_tls13_signature_with_raw_key(
        message,
        &SubjectPublicKeyInfoDer::from(cert.as_ref()),
        dss,
        &provider.signature_verification_algorithms,
    )
}

/// Client side: accept only the server whose Ed25519 key is `expected` (spec §4.2).
#[derive(Debug)]
pub struct PinnedServerKey {
    expected: NodeId,
    provider: Arc<CryptoProvider>,
}

impl PinnedServerKey {
    pub fn new(expected: NodeId) -> Self {
        Self {
            expected,
            provider: provider(),
        }
    }
}

impl ServerCertVerifier for PinnedServerKey {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, TlsError> {
        match NodeId::from_spki_der(end_entity.as_ref()) {
            Some(key) if key == self.expected && intermediates.is_empty() => {
                Ok(ServerCertVerified::assertion())
            }
            Some(_) => Err(TlsError::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            )),
            None => Err(TlsError::InvalidCertificate(CertificateError::BadEncoding)),
        }
    }

    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        Err(TlsError::PeerIncompatible(
            rustls::PeerIncompatible::Tls13RequiredForQuic,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        verify_sig(&self.provider, message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }

    fn requires_raw_public_keys(&self) -> bool {
        true
    }
}

/// Concurrent request streams a peer may open on one connection (spec §4.4).
pub const MAX_STREAMS_PER_CONNECTION: u32 = 64;
/// Flow-control windows (spec §4.4): one stream can carry one maximum app frame; the whole
/// connection never buffers more than `CONNECTION_WINDOW` unread bytes.
pub const STREAM_WINDOW: u32 = 1024 * 1024 + 4096;
pub const CONNECTION_WINDOW: u32 = 2 * 1024 * 1024;

/// The QUIC transport parameters of spec §4.4, the same for apps and nodes; `keep_alive`
/// for the connecting side.
pub fn transport_config(keep_alive: bool) -> Arc<quinn::TransportConfig> {
    let mut t = quinn::TransportConfig::default();
    t.max_idle_timeout(Some(
        Duration::from_secs(60)
            .try_into()
            .expect("60 s fits a VarInt"),
    ));
    if keep_alive {
        t.keep_alive_interval(Some(Duration::from_secs(15)));
    }
    t.max_concurrent_bidi_streams(MAX_STREAMS_PER_CONNECTION.into());
    t.max_concurrent_uni_streams(0u32.into());
    t.stream_receive_window(STREAM_WINDOW.into());
    t.receive_window(CONNECTION_WINDOW.into());
    t.send_window(CONNECTION_WINDOW as u64);
    // kith never uses QUIC datagrams (spec §4.1): advertising none means a peer that sends
    // one breaks the connection instead of filling a buffer outside flow control.
    t.datagram_receive_buffer_size(None);
    Arc::new(t)
}

/// A QUIC client configuration authenticating as `identity` to the server keyed `server`.
pub fn client_config(
    identity: &Identity,
    server: NodeId,
    alpn: &[u8],
) -> Result<quinn::ClientConfig, TlsError> {
    let mut tls = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinnedServerKey::new(server)))
        .with_client_cert_resolver(Arc::new(
            rustls::client::AlwaysResolvesClientRawPublicKeys::new(certified_key(identity)?),
        ));
    tls.alpn_protocols = vec![alpn.to_vec()];
    tls.enable_early_data = false;
    // No session tickets: a resumed session would skip the key pinning above and tickets
    // would link a client's connections.
    tls.resumption = rustls::client::Resumption::disabled();
    let quic = quinn::crypto::rustls::QuicClientConfig::try_from(tls)
        .map_err(|_| TlsError::General("TLS 1.3 AES-128-GCM suite missing".into()))?;
    let mut cfg = quinn::ClientConfig::new(Arc::new(quic));
    cfg.transport_config(transport_config(true));
    Ok(cfg)
}

/// The key the peer authenticated with in the handshake.
pub fn peer_key(conn: &quinn::Connection) -> Option<NodeId> {
    let any = conn.peer_identity()?;
    let certs = any.downcast::<Vec<CertificateDer<'static>>>().ok()?;
    NodeId::from_spki_der(certs.first()?.as_ref())
}

/// The negotiated ALPN.
pub fn alpn(conn: &quinn::Connection) -> Option<Vec<u8>> {
    let any = conn.handshake_data()?;
    any.downcast::<quinn::crypto::rustls::HandshakeData>()
        .ok()?
        .protocol
}

/// Why a frame could not be read from a stream.
#[derive(Debug, thiserror::Error)]
pub enum FrameReadError {
    #[error("connection lost: {0}")]
    Connection(#[from] quinn::ConnectionError),
    #[error("stream reset by peer")]
    Reset,
    #[error("stream ended inside a frame")]
    Truncated,
    #[error(transparent)]
    TooLarge(#[from] kith_protocol::PeerMisbehaved),
}

impl From<quinn::ReadExactError> for FrameReadError {
    fn from(e: quinn::ReadExactError) -> Self {
        match e {
            quinn::ReadExactError::FinishedEarly(_) => FrameReadError::Truncated,
            quinn::ReadExactError::ReadError(quinn::ReadError::ConnectionLost(c)) => {
                FrameReadError::Connection(c)
            }
            quinn::ReadExactError::ReadError(_) => FrameReadError::Reset,
        }
    }
}

/// First allocation for a frame body; the buffer grows only as bytes actually arrive, so a
/// header announcing a large frame costs nothing until its bytes are sent (and flow control
/// bounds those).
const INITIAL_BODY_CAPACITY: usize = 4096;

/// Read one frame; the announced length is checked against `cap` before anything else.
pub async fn read_frame(recv: &mut quinn::RecvStream, cap: u32) -> Result<Vec<u8>, FrameReadError> {
    let mut header = [0u8; FRAME_HEADER_LEN];
    recv.read_exact(&mut header).await?;
    let len = body_len(header, cap)?;
    let mut body = Vec::with_capacity(len.min(INITIAL_BODY_CAPACITY));
    while body.len() < len {
        match recv.read_chunk(len - body.len(), true).await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk.bytes),
            Ok(None) => return Err(FrameReadError::Truncated),
            Err(quinn::ReadError::ConnectionLost(c)) => return Err(FrameReadError::Connection(c)),
            Err(_) => return Err(FrameReadError::Reset),
        }
    }
    Ok(body)
}

/// Why a frame could not be written.
#[derive(Debug, thiserror::Error)]
pub enum FrameWriteError {
    #[error("connection lost: {0}")]
    Connection(#[from] quinn::ConnectionError),
    #[error("stream closed by peer")]
    Closed,
    #[error(transparent)]
    Oversize(#[from] kith_protocol::frame::OversizeFrame),
}

impl From<quinn::WriteError> for FrameWriteError {
    fn from(e: quinn::WriteError) -> Self {
        match e {
            quinn::WriteError::ConnectionLost(c) => FrameWriteError::Connection(c),
            _ => FrameWriteError::Closed,
        }
    }
}

/// Write one frame and finish the stream.
pub async fn write_frame(
    send: &mut quinn::SendStream,
    body: &[u8],
    cap: u32,
) -> Result<(), FrameWriteError> {
    let frame = encode_frame(body, cap)?;
    send.write_all(&frame).await?;
    send.finish().map_err(|_| FrameWriteError::Closed)?;
    Ok(())
}

/// Why a request/response exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    #[error("connection lost: {0}")]
    Connection(#[from] quinn::ConnectionError),
    #[error(transparent)]
    Read(#[from] FrameReadError),
    #[error(transparent)]
    Write(#[from] FrameWriteError),
}

impl ExchangeError {
    /// The QUIC application close code, if the peer closed the connection with one.
    pub fn close_code(&self) -> Option<u64> {
        let conn = match self {
            ExchangeError::Connection(c) => c,
            ExchangeError::Read(FrameReadError::Connection(c)) => c,
            ExchangeError::Write(FrameWriteError::Connection(c)) => c,
            _ => return None,
        };
        match conn {
            quinn::ConnectionError::ApplicationClosed(a) => Some(a.error_code.into_inner()),
            _ => None,
        }
    }
}

/// One request/response on a fresh bidirectional stream (spec §5.1).
pub async fn exchange(
    conn: &quinn::Connection,
    request: &[u8],
    send_cap: u32,
    recv_cap: u32,
) -> Result<Vec<u8>, ExchangeError> {
    let (mut send, mut recv) = conn.open_bi().await?;
    write_frame(&mut send, request, send_cap).await?;
    Ok(read_frame(&mut recv, recv_cap).await?)
}
