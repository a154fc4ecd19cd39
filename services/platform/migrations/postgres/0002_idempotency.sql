-- Responses to mutating RPCs by (caller organisation, operation, idempotency
-- key), written in the same transaction as the effect.
CREATE TABLE idempotency_keys (
    organisation    TEXT        NOT NULL,
    operation       TEXT        NOT NULL,
    idempotency_key TEXT        NOT NULL,
    request_hash    BYTEA       NOT NULL,
    response        BYTEA       NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (organisation, operation, idempotency_key)
);
