-- The indicators service's state for SQLite: the PostgreSQL migration's tables
-- (TEXT for times and dates, BLOB for bytes, INTEGER for booleans), because
-- the queries are shared.

CREATE TABLE indicator_people (
    person_key TEXT PRIMARY KEY,
    state      BLOB NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE indicator_snapshots (
    sequence      INTEGER PRIMARY KEY,
    snapshot_id   TEXT NOT NULL UNIQUE,
    published_at  TEXT NOT NULL,
    through_month INTEGER NOT NULL,
    periods       TEXT NOT NULL
);

CREATE TABLE indicator_cells (
    cell_id                INTEGER PRIMARY KEY AUTOINCREMENT,
    sequence               INTEGER NOT NULL REFERENCES indicator_snapshots (sequence),
    indicator_id           TEXT NOT NULL,
    area_type              INTEGER NOT NULL,
    area_code              TEXT NOT NULL,
    parent_code            TEXT,
    period                 INTEGER NOT NULL,
    stratum                INTEGER NOT NULL,
    numerator              INTEGER NOT NULL,
    numerator_suppressed   INTEGER NOT NULL,
    denominator            INTEGER NOT NULL,
    denominator_suppressed INTEGER NOT NULL,
    value                  REAL,
    UNIQUE (indicator_id, area_type, area_code, period, stratum)
);
CREATE INDEX indicator_cells_by_area ON indicator_cells (area_type, area_code, cell_id);
CREATE INDEX indicator_cells_by_parent ON indicator_cells (parent_code, cell_id);
CREATE INDEX indicator_cells_by_snapshot ON indicator_cells (sequence, area_type, area_code);
CREATE INDEX indicator_cells_by_period ON indicator_cells (period);

CREATE TABLE structure_indicator_records (
    record_id    TEXT PRIMARY KEY,
    organisation TEXT NOT NULL,
    indicator_id TEXT NOT NULL,
    present      INTEGER NOT NULL,
    assessed_on  TEXT NOT NULL,
    recorded_at  TEXT NOT NULL
);
CREATE INDEX structure_indicator_records_latest
    ON structure_indicator_records (organisation, indicator_id, assessed_on, recorded_at);
