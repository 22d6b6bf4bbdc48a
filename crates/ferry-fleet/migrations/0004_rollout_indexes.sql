-- Version 3: indexes that every poll and every event batch needs once a
-- rollout covers thousands of devices (bench/fleet-scale.sh, 10,000).
-- A device's rollouts (each poll's assignment, each batch's step note)
-- were found by scanning every rollout's device rows.
CREATE INDEX rollout_devices_by_device ON rollout_devices (device_id, state);
-- A rollout's counts by state (each poll advances the rollout) are read
-- from this index alone, without visiting the rows.
CREATE INDEX rollout_devices_by_state ON rollout_devices (rollout_id, state, wave);
