-- Version 1: enrolled devices and the events they delivered.
-- A device's token is never stored, only its SHA-256 (hex).
CREATE TABLE devices (
    id          TEXT PRIMARY KEY NOT NULL,
    token_hash  TEXT NOT NULL UNIQUE,
    enrolled_at TEXT NOT NULL,
    last_seen   TEXT,
    os          TEXT,
    version     TEXT,
    -- The highest seq such that 1..=acked_seq are all stored: what the
    -- agent may drop from its outbox.
    acked_seq   INTEGER NOT NULL DEFAULT 0
);

-- UNIQUE(device_id, seq) is the server's half of exactly-once: a batch
-- sent again after a lost answer stores nothing twice.
CREATE TABLE events (
    device_id   TEXT NOT NULL REFERENCES devices(id),
    seq         INTEGER NOT NULL,
    received_at TEXT NOT NULL,
    event       TEXT NOT NULL,
    UNIQUE (device_id, seq)
);
