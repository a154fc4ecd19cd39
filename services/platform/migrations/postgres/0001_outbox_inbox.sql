-- The transactional outbox: a state change and the event announcing it commit
-- together; the relay publishes rows and deletes them once the bus has them.
CREATE TABLE outbox (
    seq          BIGSERIAL PRIMARY KEY,
    event_id     UUID        NOT NULL UNIQUE,
    topic        TEXT        NOT NULL,
    record_key   TEXT        NOT NULL,
    -- Records of one key share a lane; one relay at a time holds a lane, so
    -- several relays never reorder one key's events.
    lane         SMALLINT    NOT NULL,
    event_type   TEXT        NOT NULL,
    event_source TEXT        NOT NULL,
    event_time   TIMESTAMPTZ NOT NULL,
    payload      BYTEA       NOT NULL,
    traceparent  TEXT,
    tracestate   TEXT,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX outbox_by_lane ON outbox (lane, seq);

CREATE TABLE outbox_lanes (
    lane SMALLINT PRIMARY KEY
);

INSERT INTO outbox_lanes (lane) SELECT generate_series(0, 15);

-- The idempotent inbox: a consumer records each event id in the same
-- transaction as the event's effect, so a redelivery has no second effect.
CREATE TABLE inbox (
    consumer    TEXT        NOT NULL,
    event_id    UUID        NOT NULL,
    received_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
