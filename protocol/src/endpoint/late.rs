//! A late endorsement delivered by a contact, the asker's side (spec §8.5.3).

use super::{Contact, Effect, Endpoint, NodeState, Reply};
use crate::endorsement::{check_late_ask, check_late_statement, SignedEndorsement};
use crate::message::PeerResponse;

pub(super) fn decide<S: NodeState>(
    endpoint: &Endpoint<'_>,
    state: &S,
    from: Contact,
    signed: SignedEndorsement,
    now: u64,
) -> Result<Reply, S::Error> {
    let statement = match check_late_statement(&signed, &from.node_id, &endpoint.node_id()) {
        Ok(statement) => statement,
        Err(refusal) => return Ok(Reply::refused(refusal)),
    };
    let ask = state.ask_record(&statement.query_id)?;
    if let Err(refusal) = check_late_ask(&statement, ask.as_ref().map(|(i, at)| (i, *at)), now) {
        return Ok(Reply::refused(refusal));
    }
    Ok(Reply {
        response: PeerResponse::Received,
        condition: None,
        effects: vec![Effect::KeepLate {
            query_id: statement.query_id,
            from: from.node_id,
            from_name: from.name,
            signed,
            item: statement.endorsement.item,
        }],
        after: Vec::new(),
    })
}
