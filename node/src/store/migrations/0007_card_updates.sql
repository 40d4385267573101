-- v7: whether each contact has this node's current card (spec §8.6): 0 it has, 1 it
-- is to be sent it (the owner changed the addresses this node advertises), 2 it said
-- this node is not its contact (never sent again, until it is stored anew).
ALTER TABLE contacts ADD COLUMN card_unsent INTEGER NOT NULL DEFAULT 0
    CHECK (card_unsent IN (0, 1, 2));
