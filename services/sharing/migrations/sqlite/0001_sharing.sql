-- The sharing service's state for SQLite: the PostgreSQL migration's tables
-- (TEXT for times, BLOB for bytes), because the queries are shared.

-- People as sharing knows them: identifiers learnt from sealed records and
-- consents, under the person key the referrals service minted.
CREATE TABLE persons (
    person_key    TEXT PRIMARY KEY,
    nhs_number    TEXT UNIQUE,
    prison_number TEXT UNIQUE,
    crn           TEXT UNIQUE,
    updated_at    TEXT NOT NULL
);

-- Health information, one row per record and data category, sealed at rest.
CREATE TABLE health_records (
    record_id   TEXT NOT NULL,
    category    TEXT NOT NULL,
    person_key  TEXT NOT NULL,
    source      TEXT NOT NULL,
    source_id   TEXT NOT NULL,
    recorded_by TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    key_id      TEXT NOT NULL,
    nonce       BLOB NOT NULL,
    ciphertext  BLOB NOT NULL,
    PRIMARY KEY (record_id, category)
);
CREATE INDEX health_records_by_person ON health_records (person_key, category, recorded_at);

CREATE TABLE consents (
    consent_id   TEXT PRIMARY KEY,
    person_key   TEXT NOT NULL,
    provision    BLOB NOT NULL,
    period_start TEXT,
    period_end   TEXT,
    method       TEXT NOT NULL,
    recorded_by  TEXT NOT NULL,
    recorded_at  TEXT NOT NULL,
    withdrawn_at TEXT
);
CREATE INDEX consents_by_person ON consents (person_key);

CREATE TABLE agreements (
    agreement_id  TEXT PRIMARY KEY,
    basis_type    TEXT NOT NULL,
    body          BLOB NOT NULL,
    registered_by TEXT NOT NULL,
    registered_at TEXT NOT NULL,
    revoked_at    TEXT
);

-- Releases as announced by the referrals service (what pushes hang on).
CREATE TABLE releases (
    release_id              TEXT PRIMARY KEY,
    person_key              TEXT NOT NULL,
    probation_delivery_unit TEXT,
    state                   TEXT NOT NULL
);

-- Pushes owed to a recipient at a transition point: pending until first
-- made, withdrawn when consent is withdrawn or the trigger is undone.
-- Announced on the recipient's feed once, when it becomes deliverable (it
-- exists and the person's health record has arrived, in either order).
CREATE TABLE deliveries (
    delivery_id  TEXT PRIMARY KEY,
    recipient    TEXT NOT NULL,
    person_key   TEXT NOT NULL,
    trigger_kind TEXT NOT NULL,
    trigger_id   TEXT NOT NULL,
    state        TEXT NOT NULL,
    announced    INTEGER NOT NULL DEFAULT 0,
    created_at   TEXT NOT NULL,
    withdrawn_at TEXT,
    UNIQUE (recipient, trigger_kind, trigger_id)
);
CREATE INDEX deliveries_by_person ON deliveries (person_key, state);
CREATE INDEX deliveries_by_trigger ON deliveries (trigger_kind, trigger_id);

-- Every disclosure made, for subject access.
CREATE TABLE disclosures (
    disclosure_id  TEXT PRIMARY KEY,
    person_key     TEXT NOT NULL,
    recipient      TEXT NOT NULL,
    recipient_kind TEXT NOT NULL,
    purpose        TEXT NOT NULL,
    bases          TEXT NOT NULL,
    categories     TEXT NOT NULL,
    trigger_kind   TEXT NOT NULL,
    trigger_id     TEXT NOT NULL,
    disclosed_at   TEXT NOT NULL
);
CREATE INDEX disclosures_by_person ON disclosures (person_key, disclosed_at);

-- The hash-chained audit log of every decision, and its head (locked by each
-- appender, so entries chain in order; also catches entries cut off the end).
CREATE TABLE audit_log (
    seq                INTEGER PRIMARY KEY,
    at                 TEXT NOT NULL,
    actor_organisation TEXT NOT NULL,
    actor_kind         TEXT NOT NULL,
    actor_role         TEXT NOT NULL,
    person_key         TEXT NOT NULL,
    purpose            TEXT NOT NULL,
    decision           TEXT NOT NULL,
    bases              TEXT NOT NULL,
    categories         TEXT NOT NULL,
    justification      TEXT NOT NULL,
    flagged            INTEGER NOT NULL,
    previous_hash      BLOB NOT NULL,
    hash               BLOB NOT NULL
);
CREATE INDEX audit_log_flagged ON audit_log (seq) WHERE flagged;

CREATE TABLE audit_head (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    last_seq  INTEGER NOT NULL,
    last_hash BLOB NOT NULL
);
INSERT INTO audit_head (id, last_seq, last_hash) VALUES (1, 0, zeroblob(32));
