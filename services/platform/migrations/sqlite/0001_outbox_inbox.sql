-- See the PostgreSQL migration. SQLite has one writer and the embedded mode one
-- relay, so there are no lanes.
CREATE TABLE outbox (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id     TEXT    NOT NULL UNIQUE,
    topic        TEXT    NOT NULL,
    record_key   TEXT    NOT NULL,
    event_type   TEXT    NOT NULL,
    event_source TEXT    NOT NULL,
    event_time   TEXT    NOT NULL,
    payload      BLOB    NOT NULL,
    traceparent  TEXT,
    tracestate   TEXT,
    created_at   TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE inbox (
    consumer    TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    received_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (consumer, event_id)
);
