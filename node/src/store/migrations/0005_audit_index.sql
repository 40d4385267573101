-- v5: budgets and daily limits count audit entries by event, peer and time.
CREATE INDEX audit_by_event_peer ON audit (event, peer, at);
