//! Keeping contacts' copies of this node's card current (spec §8.6): after the owner changes
//! the addresses the node advertises (`kith settings set advertise`), or the node starts on
//! another port, every contact is sent the new card until it acknowledges it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use kith_protocol::app::{AppError, AppErrorCode, CardUpdateReport, CardUpdateUnreached};
use kith_protocol::card::MAX_ADDRESSES;
use kith_protocol::wire::{decode_message, encode_message};
use kith_protocol::{
    ContactCard, Identity, NodeId, PeerRequest, PeerResponse, Refusal, SignedCard,
};

use crate::replies::err;
use crate::shared::Shared;
use crate::store::{StoreError, StoredContact};
use crate::{peers, unix_now, NodeError};

/// How long one contact may take to acknowledge a card update.
const UPDATE_TIMEOUT: Duration = Duration::from_secs(5);
/// How often contacts that have not acknowledged the current card are tried again.
pub(crate) const RETRY_EVERY: Duration = Duration::from_secs(600);

/// Why a contact did not take the card.
enum Undelivered {
    /// Try again later: it was unreachable, busy or failed.
    Retry(String),
    /// It will never take it (it no longer has this node as a contact): stop sending.
    GiveUp(String),
}

/// The addresses a card carries, from the `advertise` setting (comma-separated). A port of
/// 0 there, or any port when `kith run --listen` overrides the stored address, means the
/// port the node bound. None at all: the bound address itself.
pub(crate) fn advertised(setting: &str, bound: SocketAddr, listen_override: bool) -> Vec<String> {
    let mut addresses: Vec<String> = setting
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|a| match a.parse::<SocketAddr>() {
            Ok(mut sa) if sa.port() == 0 || listen_override => {
                sa.set_port(bound.port());
                sa.to_string()
            }
            _ => a.to_string(),
        })
        .collect();
    if addresses.is_empty() {
        addresses.push(crate::data_dir::local_api_addr(bound).to_string());
    }
    addresses
}

/// This node's card with `addresses`, issued now for a year (spec §3.1).
pub(crate) fn sign_card(
    identity: &Identity,
    name: &str,
    addresses: Vec<String>,
) -> Result<SignedCard, NodeError> {
    Ok(ContactCard::new(
        identity,
        name,
        addresses,
        unix_now(),
        kith_protocol::card::DEFAULT_CARD_LIFETIME,
    )
    .map_err(|e| NodeError::Config(e.to_string()))?
    .sign(identity))
}

/// Check the owner's new addresses: 1 to 4 `host:port`, no wildcard address (contacts
/// cannot reach `0.0.0.0`), duplicates dropped.
pub(crate) fn parse_advertise(given: &[String]) -> Result<Vec<String>, AppError> {
    let mut addresses: Vec<String> = Vec::new();
    for a in given
        .iter()
        .flat_map(|a| a.split(','))
        .map(str::trim)
        .filter(|a| !a.is_empty())
    {
        kith_protocol::card::validate_address(a).map_err(|e| {
            err(
                AppErrorCode::BadRequest,
                format!("{e}: give HOST:PORT, for example 192.0.2.7:7400"),
            )
        })?;
        if a.parse::<SocketAddr>()
            .is_ok_and(|sa| sa.ip().is_unspecified())
        {
            return Err(err(
                AppErrorCode::BadRequest,
                format!("{a} is not an address contacts can reach; give this machine's LAN or public address"),
            ));
        }
        if !addresses.iter().any(|b| b == a) {
            addresses.push(a.to_string());
        }
    }
    if addresses.is_empty() || addresses.len() > MAX_ADDRESSES {
        return Err(err(
            AppErrorCode::BadRequest,
            format!(
                "advertise takes 1 to {MAX_ADDRESSES} addresses HOST:PORT, separated by commas"
            ),
        ));
    }
    Ok(addresses)
}

/// The owner changed the addresses this node advertises: new invites carry them at once,
/// and every contact is sent the new card now (and again later if it cannot be reached).
pub(crate) async fn set_advertise(
    shared: &Arc<Shared>,
    given: &[String],
) -> Result<CardUpdateReport, AppError> {
    let addresses = parse_advertise(given)?;
    let card = sign_card(&shared.identity, &shared.name, addresses.clone())
        .map_err(|e| err(AppErrorCode::Internal, e))?;
    let joined = addresses.join(",");
    {
        // Held across the store write: two changes at once end with the later card in
        // both the store and memory.
        let mut current = shared.card.write().unwrap_or_else(|p| p.into_inner());
        shared
            .store
            .announce_addresses(Some(&joined), &joined)
            .map_err(|e| err(AppErrorCode::Internal, e))?;
        *current = card;
    }
    let mut report = push(shared).await;
    // Those not sent it at all: the owner is told, once per change.
    let refusing = shared
        .store
        .contacts_refusing_card()
        .map_err(|e| err(AppErrorCode::Internal, e))?;
    let listed: Vec<NodeId> = report.unreached.iter().map(|u| u.contact).collect();
    report.unreached.extend(
        refusing
            .into_iter()
            .filter(|c| !listed.contains(&c.node_id))
            .map(|c| CardUpdateUnreached {
                contact: c.node_id,
                name: c.name,
                reason: "not sent: it said you are not its contact".into(),
            }),
    );
    report.unreached.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(report)
}

/// Send the current card to every contact that has not acknowledged it, at once, each
/// bounded by [`UPDATE_TIMEOUT`]. One push runs at a time.
pub(crate) async fn push(shared: &Arc<Shared>) -> CardUpdateReport {
    let _one = shared.card_push.lock().await;
    push_now(shared).await
}

/// [`push`], unless one is running already (it sends the same card to the same contacts).
async fn push_if_idle(shared: &Arc<Shared>) {
    if let Ok(_one) = shared.card_push.try_lock() {
        push_now(shared).await;
    }
}

async fn push_now(shared: &Arc<Shared>) -> CardUpdateReport {
    let card = shared.current_card();
    let addresses = card.addresses();
    let announced = addresses.join(",");
    let waiting = match shared.store.contacts_without_current_card() {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!("store: {e}");
            Vec::new()
        }
    };
    let payload: Arc<[u8]> = encode_message(&PeerRequest::UpdateCard(card)).into();
    let mut sends = tokio::task::JoinSet::new();
    for contact in waiting {
        let (shared, payload) = (shared.clone(), payload.clone());
        sends.spawn(async move {
            let result = send(&shared, &contact, &payload).await;
            (contact, result)
        });
    }
    let mut report = CardUpdateReport {
        addresses,
        delivered: Vec::new(),
        unreached: Vec::new(),
    };
    while let Some(joined) = sends.join_next().await {
        let Ok((contact, result)) = joined else {
            continue;
        };
        let stored = match &result {
            Ok(()) => shared.store.card_delivered(&contact.node_id, &announced),
            Err(Undelivered::GiveUp(_)) => shared.store.card_refused(&contact.node_id),
            Err(Undelivered::Retry(_)) => Ok(()),
        };
        if let Err(e) = stored {
            tracing::warn!("store: {e}");
        }
        match result {
            Ok(()) => report.delivered.push(contact.name),
            Err(Undelivered::GiveUp(reason) | Undelivered::Retry(reason)) => {
                report.unreached.push(CardUpdateUnreached {
                    contact: contact.node_id,
                    name: contact.name,
                    reason,
                })
            }
        }
    }
    report.delivered.sort();
    report.unreached.sort_by(|a, b| a.name.cmp(&b.name));
    report
}

async fn send(
    shared: &Arc<Shared>,
    contact: &StoredContact,
    payload: &[u8],
) -> Result<(), Undelivered> {
    let addresses = contact.card.addresses();
    let exchange = peers::request(shared, contact.node_id, &addresses, payload);
    let reply = tokio::time::timeout(UPDATE_TIMEOUT, exchange)
        .await
        .unwrap_or_else(|_| Err("no answer in time".into()))
        .map_err(Undelivered::Retry)?;
    let retry = |why: &str| Err(Undelivered::Retry(why.into()));
    match decode_message::<PeerResponse>(&reply) {
        Ok(PeerResponse::CardUpdated) => Ok(()),
        Ok(PeerResponse::Refused(Refusal::NotAContact)) => Err(Undelivered::GiveUp(
            "it no longer has you as a contact; not sent again".into(),
        )),
        Ok(PeerResponse::Refused(Refusal::UnsupportedVersion)) => {
            retry("its software is older than card updates")
        }
        Ok(PeerResponse::Refused(Refusal::Malformed)) => {
            retry("it refused the card as malformed (its software may be older)")
        }
        Ok(PeerResponse::Refused(Refusal::RateLimited)) => {
            retry("it takes no more address changes from you today")
        }
        Ok(PeerResponse::Refused(r)) => retry(&format!("refused: {r}")),
        _ => retry("unexpected reply"),
    }
}

/// Send the current card to `contact` (with any other contact waiting for it) if it has
/// not acknowledged it yet: it just told us its own card, so it is reachable now.
pub(crate) fn offer(shared: &Arc<Shared>, contact: NodeId) -> Result<(), StoreError> {
    let waiting = shared.store.contacts_without_current_card()?;
    if waiting.iter().any(|c| c.node_id == contact) {
        let shared = shared.clone();
        tokio::spawn(async move { shared.shutdown.run_until(push_if_idle(&shared)).await });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advertise_takes_reachable_host_ports_only() {
        let parse = |text: &str| parse_advertise(&[text.to_string()]);
        assert_eq!(
            parse(" 192.0.2.7:7400, host.example:7400,192.0.2.7:7400 ").unwrap(),
            ["192.0.2.7:7400", "host.example:7400"]
        );
        for bad in [
            "",
            "0.0.0.0:7400",
            "[::]:7400",
            "192.0.2.7",
            "192.0.2.7:0",
            "a b:1",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert!(parse("a:1,b:1,c:1,d:1,e:1").is_err());
    }

    #[test]
    fn a_port_of_zero_or_an_overridden_listen_takes_the_bound_port() {
        let bound: SocketAddr = "127.0.0.1:7500".parse().unwrap();
        assert_eq!(advertised("192.0.2.7:0", bound, false), ["192.0.2.7:7500"]);
        assert_eq!(
            advertised("192.0.2.7:7400", bound, false),
            ["192.0.2.7:7400"]
        );
        assert_eq!(
            advertised("192.0.2.7:7400", bound, true),
            ["192.0.2.7:7500"]
        );
        assert_eq!(
            advertised("host.example:7400", bound, true),
            ["host.example:7400"]
        );
        assert_eq!(advertised("", bound, false), ["127.0.0.1:7500"]);
    }
}
