-- The referrals service's state for SQLite: the same tables as the PostgreSQL
-- migration (TEXT for dates and times, BLOB for bytes), because the queries
-- that read and write them are shared.

-- People, by pseudonymous key, with every identifier learnt so far and where
-- they are placed now (for the areas of their observations).
CREATE TABLE persons (
    person_key              TEXT PRIMARY KEY,
    nhs_number              TEXT UNIQUE,
    prison_number           TEXT UNIQUE,
    crn                     TEXT UNIQUE,
    date_of_birth           TEXT,
    sex                     TEXT NOT NULL,
    ethnic_group            TEXT NOT NULL,
    probation_region        TEXT,
    probation_delivery_unit TEXT,
    integrated_care_board   TEXT,
    local_authority         TEXT,
    prison                  TEXT,
    updated_at              TEXT NOT NULL
);

CREATE TABLE releases (
    release_id              TEXT PRIMARY KEY,
    person_key              TEXT NOT NULL REFERENCES persons (person_key),
    release_date            TEXT NOT NULL,
    reason                  TEXT NOT NULL,
    releasing_prison        TEXT NOT NULL,
    local_authority         TEXT,
    probation_region        TEXT,
    probation_delivery_unit TEXT,
    integrated_care_board   TEXT,
    approved_premises       TEXT,
    state                   TEXT NOT NULL,
    notified_by             TEXT NOT NULL,
    notified_at             TEXT NOT NULL,
    reversed_at             TEXT,
    reversal_reason         TEXT
);
CREATE INDEX releases_by_person ON releases (person_key, notified_at);

CREATE TABLE continuity_tasks (
    task_id      TEXT PRIMARY KEY,
    release_id   TEXT NOT NULL REFERENCES releases (release_id),
    person_key   TEXT NOT NULL,
    rule_id      TEXT NOT NULL,
    kind         TEXT NOT NULL,
    service      TEXT,
    closes_on    TEXT,
    responsible  TEXT NOT NULL,
    state        TEXT NOT NULL,
    opened_at    TEXT NOT NULL,
    due_at       TEXT NOT NULL,
    closed_at    TEXT,
    referral_id  TEXT
);
CREATE INDEX tasks_by_release ON continuity_tasks (release_id);
CREATE INDEX tasks_pending ON continuity_tasks (person_key, service) WHERE state IN ('open', 'overdue');
CREATE INDEX tasks_due ON continuity_tasks (due_at) WHERE state = 'open';
CREATE INDEX tasks_by_responsible ON continuity_tasks (responsible, opened_at);

CREATE TABLE referrals (
    referral_id         TEXT PRIMARY KEY,
    person_key          TEXT NOT NULL REFERENCES persons (person_key),
    service             TEXT NOT NULL,
    referrer            TEXT NOT NULL,
    provider            TEXT NOT NULL,
    state               TEXT NOT NULL,
    urgency             TEXT NOT NULL,
    release_id          TEXT REFERENCES releases (release_id),
    appointment_at      TEXT,
    rejection_reason    TEXT,
    rejection_text      TEXT,
    cancellation_reason TEXT,
    requested_at        TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    version             INTEGER NOT NULL
);
-- One active referral per person, service and provider.
CREATE UNIQUE INDEX one_active_referral ON referrals (person_key, service, provider)
    WHERE state IN ('requested', 'acknowledged', 'accepted', 'appointment_booked', 'attended', 'did_not_attend');
CREATE INDEX referrals_by_provider ON referrals (provider, requested_at, referral_id);
CREATE INDEX referrals_by_referrer ON referrals (referrer, requested_at, referral_id);
CREATE INDEX referrals_by_release ON referrals (release_id);

-- Every change, kept.
CREATE TABLE referral_history (
    referral_id TEXT   NOT NULL REFERENCES referrals (referral_id),
    version     INTEGER NOT NULL,
    from_state  TEXT,
    to_state    TEXT   NOT NULL,
    actor       TEXT   NOT NULL,
    at          TEXT NOT NULL,
    PRIMARY KEY (referral_id, version)
);

CREATE TABLE transitions (
    transition_id           TEXT PRIMARY KEY,
    person_key              TEXT NOT NULL REFERENCES persons (person_key),
    kind                    TEXT NOT NULL,
    occurred_on             TEXT NOT NULL,
    prison                  TEXT,
    probation_delivery_unit TEXT,
    local_authority         TEXT,
    approved_premises       TEXT,
    details                 TEXT NOT NULL,
    recorded_by             TEXT NOT NULL,
    recorded_at             TEXT NOT NULL
);

-- Assessment findings are health facts: kept sealed at rest.
CREATE TABLE assessments (
    assessment_id           TEXT PRIMARY KEY,
    person_key              TEXT NOT NULL REFERENCES persons (person_key),
    assessed_on             TEXT NOT NULL,
    probation_region        TEXT,
    probation_delivery_unit TEXT,
    local_authority         TEXT,
    integrated_care_board   TEXT,
    findings_key_id         TEXT NOT NULL,
    findings_nonce          BLOB NOT NULL,
    findings                BLOB NOT NULL,
    recorded_by             TEXT NOT NULL,
    recorded_at             TEXT NOT NULL
);
CREATE INDEX assessments_by_person ON assessments (person_key, recorded_by);
