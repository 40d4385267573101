-- v8: the (asker, query id) pairs of admitted aggregations, for 24 hours (spec §9.8.2
-- step 4), so that a restart does not let a query id open a second session.
CREATE TABLE used_queries (
    asker    BLOB NOT NULL CHECK (length(asker) = 32),
    query_id BLOB NOT NULL CHECK (length(query_id) = 16),
    at       INTEGER NOT NULL,
    PRIMARY KEY (asker, query_id)
);
CREATE INDEX used_queries_by_time ON used_queries (at);
