//! The server side of kith's TLS (spec §4.2, §4.3): the node's raw Ed25519 key, and any
//! client key that proves itself in the handshake. Whether that key may do anything is
//! decided after the handshake, from the ALPN and the node's contact and credential lists.

use std::sync::Arc;

use kith_client::transport::{certified_key, provider, transport_config, verify_sig};
use kith_protocol::{Identity, NodeId};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, Error as TlsError, SignatureScheme,
};

/// Server side: require a client raw Ed25519 key and a valid handshake signature with it,
/// but accept any such key. Whether that key may do anything is decided after the handshake
/// from the ALPN and the node's contact and credential lists (spec §4.3).
#[derive(Debug)]
pub struct AnyClientKey {
    provider: Arc<CryptoProvider>,
}

impl AnyClientKey {
    pub fn new() -> Self {
        Self {
            provider: provider(),
        }
    }
}

impl Default for AnyClientKey {
    fn default() -> Self {
        Self::new()
    }
}

impl ClientCertVerifier for AnyClientKey {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, TlsError> {
        if NodeId::from_spki_der(end_entity.as_ref()).is_some() && intermediates.is_empty() {
            Ok(ClientCertVerified::assertion())
        } else {
            Err(TlsError::InvalidCertificate(CertificateError::BadEncoding))
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

/// A QUIC server configuration for a node: its raw key, any client key, both ALPNs.
pub fn server_config(
    identity: &Identity,
    alpns: &[&[u8]],
) -> Result<quinn::ServerConfig, TlsError> {
    let mut tls = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(Arc::new(AnyClientKey::new()))
        .with_cert_resolver(Arc::new(
            rustls::server::AlwaysResolvesServerRawPublicKeys::new(certified_key(identity)?),
        ));
    tls.alpn_protocols = alpns.iter().map(|a| a.to_vec()).collect();
    tls.max_early_data_size = 0;
    tls.send_tls13_tickets = 0;
    tls.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    let quic = quinn::crypto::rustls::QuicServerConfig::try_from(tls)
        .map_err(|_| TlsError::General("TLS 1.3 AES-128-GCM suite missing".into()))?;
    let mut cfg = quinn::ServerConfig::with_crypto(Arc::new(quic));
    cfg.transport_config(transport_config(false));
    Ok(cfg)
}
