-- Per-organisation change feeds behind the services' watch streams. Each
-- writer bumps the counter row (locking it to commit), so an organisation's
-- entries commit in sequence order and a watcher resuming after seq N never
-- skips one.
CREATE TABLE feed_counters (
    organisation TEXT   NOT NULL,
    feed         TEXT   NOT NULL,
    last_seq     INTEGER NOT NULL,
    PRIMARY KEY (organisation, feed)
);

CREATE TABLE feed_entries (
    organisation TEXT   NOT NULL,
    feed         TEXT   NOT NULL,
    seq          INTEGER NOT NULL,
    entity_id    TEXT   NOT NULL,
    snapshot     BLOB  NOT NULL,
    at           TEXT NOT NULL,
    PRIMARY KEY (organisation, feed, seq)
);
