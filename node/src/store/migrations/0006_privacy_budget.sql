-- v6: the daily privacy budget per asker (spec §9.10): the ε charged for every
-- aggregate answered, in thousandths.
CREATE TABLE privacy_spend (
    asker         BLOB NOT NULL CHECK (length(asker) = 32),
    at            INTEGER NOT NULL,
    milli_epsilon INTEGER NOT NULL CHECK (milli_epsilon >= 0)
);
CREATE INDEX privacy_spend_by_asker ON privacy_spend (asker, at);
