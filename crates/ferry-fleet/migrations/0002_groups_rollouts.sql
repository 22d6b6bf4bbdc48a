-- Version 2: device groups (labels) and rollouts in waves.
-- A device joins a group by label, at enrolment or by an operator's call.
CREATE TABLE device_labels (
    device_id TEXT NOT NULL REFERENCES devices(id),
    label     TEXT NOT NULL,
    UNIQUE (device_id, label)
);

-- One rollout: its request as JSON (what the operator asked for, kept
-- whole so that a newer server reads an older rollout as it was made),
-- the uploaded artifact and its detached signature when not referenced by
-- URL, and where the waves stand. Times that the server computes with are
-- Unix seconds; the *_at texts are for people.
CREATE TABLE rollouts (
    id              TEXT PRIMARY KEY NOT NULL,
    created_at      TEXT NOT NULL,
    spec            TEXT NOT NULL,
    artifact        BLOB,
    signature       BLOB,
    -- active, paused, aborted, completed
    state           TEXT NOT NULL,
    reason          TEXT,
    -- The wave whose devices are assigned last (0 = the canary).
    wave            INTEGER NOT NULL DEFAULT 0,
    wave_started    INTEGER NOT NULL,
    -- After a resume: waves up to this one pass their gate (the operator
    -- accepted them) and failures up to this count are not held against
    -- the abort criteria again.
    accepted_wave   INTEGER NOT NULL DEFAULT -1,
    failure_base    INTEGER NOT NULL DEFAULT 0
);

-- Each device of the rollout's group, in the order waves take them. A
-- device not yet in a wave is pending with no command; assignment gives it
-- a command id (random, single use) that expires.
CREATE TABLE rollout_devices (
    rollout_id  TEXT NOT NULL REFERENCES rollouts(id),
    device_id   TEXT NOT NULL REFERENCES devices(id),
    rank        INTEGER NOT NULL,
    wave        INTEGER,
    -- pending, assigned, running, succeeded, failed
    state       TEXT NOT NULL,
    command_id  TEXT UNIQUE,
    expires     INTEGER,
    step        TEXT,
    reason      TEXT,
    assigned_at TEXT,
    started_at  TEXT,
    finished_at TEXT,
    UNIQUE (rollout_id, device_id)
);
