-- The indicators service's state. The SQL that reads and writes these tables
-- is shared with SQLite (see the sqlite migration), so names and shapes match.

-- Each pseudonymous person's coded observations, the only per-person state:
-- a protobuf StoredPerson (see src/domain/person.rs). Every indicator is
-- derived from these rows, and they can be rebuilt from the observations topic.
CREATE TABLE indicator_people (
    person_key TEXT PRIMARY KEY,
    state      BYTEA NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

-- Publications, one per period close. `through_month` is the last month
-- published (year * 12 + month - 1); `periods` lists the period ids published.
CREATE TABLE indicator_snapshots (
    sequence      BIGINT PRIMARY KEY,
    snapshot_id   TEXT NOT NULL UNIQUE,
    published_at  TIMESTAMPTZ NOT NULL,
    through_month INTEGER NOT NULL,
    periods       TEXT NOT NULL
);

-- Published cells, after disclosure control. Written once, never changed:
-- a period is published at its close and frozen. `period` is a period id
-- (months are year * 12 + month - 1; quarters carry bit 17), `stratum` 0 to 17.
CREATE TABLE indicator_cells (
    cell_id                BIGSERIAL PRIMARY KEY,
    sequence               BIGINT NOT NULL REFERENCES indicator_snapshots (sequence),
    indicator_id           TEXT NOT NULL,
    area_type              SMALLINT NOT NULL,
    area_code              TEXT NOT NULL,
    -- A probation delivery unit's region, so the region can see it.
    parent_code            TEXT,
    period                 INTEGER NOT NULL,
    stratum                SMALLINT NOT NULL,
    numerator              BIGINT NOT NULL,
    numerator_suppressed   BOOLEAN NOT NULL,
    denominator            BIGINT NOT NULL,
    denominator_suppressed BOOLEAN NOT NULL,
    value                  DOUBLE PRECISION,
    UNIQUE (indicator_id, area_type, area_code, period, stratum)
);
CREATE INDEX indicator_cells_by_area ON indicator_cells (area_type, area_code, cell_id);
CREATE INDEX indicator_cells_by_parent ON indicator_cells (parent_code, cell_id);
CREATE INDEX indicator_cells_by_snapshot ON indicator_cells (sequence, area_type, area_code);
CREATE INDEX indicator_cells_by_period ON indicator_cells (period);

-- Structure indicators as each organisation records them about itself;
-- the latest assessment per organisation and indicator is current.
CREATE TABLE structure_indicator_records (
    record_id    TEXT PRIMARY KEY,
    organisation TEXT NOT NULL,
    indicator_id TEXT NOT NULL,
    present      BOOLEAN NOT NULL,
    assessed_on  DATE NOT NULL,
    recorded_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX structure_indicator_records_latest
    ON structure_indicator_records (organisation, indicator_id, assessed_on, recorded_at);
