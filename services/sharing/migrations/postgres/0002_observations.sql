-- What the coded observations about disclosures at release (for the
-- indicators service) need: the release day, and the person as the release's
-- health record places them.

-- Start of the release day, for days from release to disclosure.
ALTER TABLE releases ADD COLUMN released_at TIMESTAMPTZ;

-- Who and where each health record places its person: an events.v1
-- Observation with no fact (areas, sex, age band, ethnic group), sealed at
-- rest like the record's categories, found by the release the record came
-- from (kept for releases only).
CREATE TABLE record_subjects (
    record_id  TEXT PRIMARY KEY,
    source_id  TEXT NOT NULL,
    key_id     TEXT NOT NULL,
    nonce      BYTEA NOT NULL,
    ciphertext BYTEA NOT NULL
);
CREATE INDEX record_subjects_by_source ON record_subjects (source_id);
