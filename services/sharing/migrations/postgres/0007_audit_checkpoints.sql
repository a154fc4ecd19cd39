-- The audit chain's head, signed with the sharing service's Ed25519 key at a
-- fixed cadence (and published on the sharing events topic): a cut tail or a
-- recomputed chain no longer agrees with them.
CREATE TABLE audit_checkpoints (
    seq       BIGINT PRIMARY KEY,
    hash      BYTEA NOT NULL,
    at        TIMESTAMPTZ NOT NULL,
    signature BYTEA NOT NULL
);
