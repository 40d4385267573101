//! Paired apps (spec §10.5): what an app may do, and the one-time code that pairs it.
//!
//! The owner asks its node for a pairing code with a name and a scope; the app, holding
//! only the code and the node's API address, connects with a fresh key of its own and
//! redeems the code once (`AppRequest::Pair`). The node then knows that key as the app and
//! enforces its scope on every request. The code carries the node's id, so the app can pin
//! the node's key from its very first connection.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::identity::NodeId;
use crate::item::{ItemKey, ItemPattern};
use crate::text_code::{self, TextCodeError};

/// A text that is not a pairing code (spec §10.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a kith pairing code: {0}")]
pub struct BadPairingCode(pub &'static str);

impl From<TextCodeError> for BadPairingCode {
    fn from(e: TextCodeError) -> Self {
        BadPairingCode(match e {
            TextCodeError::Prefix => "it does not start with KITHAPP1",
            TextCodeError::Alphabet => "it contains characters a code never has",
            TextCodeError::Checksum => "a character is wrong or missing",
            TextCodeError::TooLong => "it is too long",
        })
    }
}

/// Prefix of a pairing code's text form (spec §10.5).
pub const PAIRING_PREFIX: &str = "KITHAPP1";
/// Bytes of secret in a pairing code (spec §10.5).
pub const PAIRING_SECRET_LEN: usize = 16;
/// How long a pairing code can be redeemed: 10 minutes (spec §10.5).
pub const PAIRING_TTL_SECS: u64 = 600;
/// Longest pairing code text accepted (spec §10.5).
pub const MAX_PAIRING_CHARS: usize = 200;

/// What a paired app may do. The owner credential has no scope: it may do everything (spec §10.5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppScope {
    /// Items the app may ask about: an ask is in scope when one pattern matches its item.
    pub ask: Vec<ItemPattern>,
    /// Whether the app receives named endorsements; `false`: counts only.
    pub named: bool,
    /// Most asks per 24 hours; `None`: no limit.
    pub daily_limit: Option<u32>,
}

impl AppScope {
    /// Whether an ask about `item` is within this scope (spec §10.5).
    pub fn allows(&self, item: &ItemKey) -> bool {
        self.ask.iter().any(|p| p.matches(item))
    }
}

/// A paired app, as the owner sees it (spec §10.5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppInfo {
    pub name: String,
    /// The app's credential key.
    pub key: NodeId,
    pub scope: AppScope,
    pub paired_at: u64,
    /// When it last made a request, if ever.
    pub last_used_at: Option<u64>,
    /// Asks in the last 24 hours.
    pub asks_24h: u32,
    pub revoked_at: Option<u64>,
}

/// A one-time pairing code: the node's id and a secret. A bearer secret until redeemed or
/// expired, so `Debug` hides it (spec §10.5).
#[derive(Clone, PartialEq, Eq)]
pub struct PairingCode {
    pub node: NodeId,
    pub secret: [u8; PAIRING_SECRET_LEN],
}

impl core::fmt::Debug for PairingCode {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PairingCode")
            .field("node", &self.node)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl PairingCode {
    /// `KITHAPP1` + base32(node id ‖ secret ‖ checksum) (spec §3.3).
    pub fn to_text(&self) -> String {
        let mut payload = Vec::with_capacity(32 + PAIRING_SECRET_LEN);
        payload.extend_from_slice(self.node.as_bytes());
        payload.extend_from_slice(&self.secret);
        text_code::encode(PAIRING_PREFIX, &payload)
    }

    /// Read the text of a pairing code: `KITHAPP1` and 48 bytes (spec §10.5, §3.3).
    pub fn from_text(text: &str) -> Result<Self, BadPairingCode> {
        let payload = text_code::decode(PAIRING_PREFIX, text, MAX_PAIRING_CHARS)?;
        if payload.len() != 32 + PAIRING_SECRET_LEN {
            return Err(BadPairingCode("its length is wrong"));
        }
        let mut node = [0u8; 32];
        node.copy_from_slice(&payload[..32]);
        let mut secret = [0u8; PAIRING_SECRET_LEN];
        secret.copy_from_slice(&payload[32..]);
        Ok(PairingCode {
            node: NodeId(node),
            secret,
        })
    }

    /// What the node stores instead of the secret: SHA-256("kith/v1/pairing" ‖ 0x00 ‖ secret).
    /// Spec: §10.5.
    pub fn secret_hash(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"kith/v1/pairing\0");
        h.update(self.secret);
        h.finalize().into()
    }
}

/// A pairing code the owner just created (spec §10.3, §10.5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairingCreated {
    /// The text form of the [`PairingCode`]; shown once.
    pub code: crate::app::InviteCode,
    pub name: String,
    pub expires_at: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_hide_their_secret() {
        let code = PairingCode {
            node: NodeId([7; 32]),
            secret: [9; PAIRING_SECRET_LEN],
        };
        let text = code.to_text();
        assert!(text.starts_with(PAIRING_PREFIX));
        assert_eq!(PairingCode::from_text(&text).unwrap(), code);
        assert_eq!(PairingCode::from_text(&text.to_lowercase()).unwrap(), code);
        assert!(!format!("{code:?}").contains("9, 9"));
        let mut bad = text.clone();
        bad.pop();
        assert!(PairingCode::from_text(&bad).is_err());
        assert!(PairingCode::from_text("KITH1AAAA").is_err());
    }

    #[test]
    fn scope_allows_only_matching_items() {
        let scope = AppScope {
            ask: vec![ItemPattern::parse("tag:vehicle/*").unwrap()],
            named: false,
            daily_limit: Some(3),
        };
        assert!(scope.allows(&ItemKey::parse("tag:vehicle/subaru").unwrap()));
        assert!(!scope.allows(&ItemKey::parse("isbn:9780141439518").unwrap()));
        let none = AppScope {
            ask: vec![],
            ..scope
        };
        assert!(!none.allows(&ItemKey::parse("tag:vehicle/subaru").unwrap()));
    }
}
