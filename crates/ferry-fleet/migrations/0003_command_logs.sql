-- Version 3: the output of a device's run of a command (stdout and stderr,
-- the last 1 MiB), uploaded by its agent after the result. One row per
-- device and command; an upload sent again replaces it (same bytes).
CREATE TABLE command_logs (
    device_id   TEXT NOT NULL REFERENCES devices(id),
    command_id  TEXT NOT NULL,
    rollout_id  TEXT NOT NULL,
    uploaded_at TEXT NOT NULL,
    bytes       INTEGER NOT NULL,
    content     BLOB NOT NULL,
    PRIMARY KEY (device_id, command_id)
);
