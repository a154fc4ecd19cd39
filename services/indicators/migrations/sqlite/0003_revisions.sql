-- Revisions (see the PostgreSQL migration). SQLite cannot drop a table's
-- UNIQUE constraint, so the cells table is made again without it.
CREATE TABLE indicator_cells_revised (
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
    revision               INTEGER NOT NULL DEFAULT 0,
    superseded_by          INTEGER REFERENCES indicator_snapshots (sequence),
    true_denominator       INTEGER NOT NULL DEFAULT 0,
    true_numerator         INTEGER NOT NULL DEFAULT 0,
    known_den_lo           INTEGER NOT NULL DEFAULT 0,
    known_den_hi           INTEGER NOT NULL DEFAULT 0,
    known_num_lo           INTEGER NOT NULL DEFAULT 0,
    known_num_hi           INTEGER NOT NULL DEFAULT 0
);
INSERT INTO indicator_cells_revised (cell_id, sequence, indicator_id, area_type, area_code,
    parent_code, period, stratum, numerator, numerator_suppressed, denominator,
    denominator_suppressed, value)
SELECT cell_id, sequence, indicator_id, area_type, area_code, parent_code, period, stratum,
    numerator, numerator_suppressed, denominator, denominator_suppressed, value
FROM indicator_cells;
DROP TABLE indicator_cells;
ALTER TABLE indicator_cells_revised RENAME TO indicator_cells;
CREATE INDEX indicator_cells_by_area ON indicator_cells (area_type, area_code, cell_id);
CREATE INDEX indicator_cells_by_parent ON indicator_cells (parent_code, cell_id);
CREATE INDEX indicator_cells_by_snapshot ON indicator_cells (sequence, area_type, area_code);
CREATE INDEX indicator_cells_by_period ON indicator_cells (period);

-- Cells published before revisions existed: their truth then is taken as
-- what they showed, and the attacker's interval as their old rounding's (2
-- either side), or anything for a suppressed count.
UPDATE indicator_cells SET
    true_denominator = denominator,
    true_numerator   = numerator,
    known_den_lo = CASE WHEN denominator_suppressed OR denominator = 0 THEN 0 ELSE denominator - 2 END,
    known_den_hi = CASE WHEN denominator_suppressed THEN 4611686018427387903
                        WHEN denominator = 0 THEN 0 ELSE denominator + 2 END,
    known_num_lo = CASE WHEN numerator_suppressed OR numerator = 0 THEN 0 ELSE numerator - 2 END,
    known_num_hi = CASE WHEN numerator_suppressed THEN 4611686018427387903
                        WHEN numerator = 0 THEN 0 ELSE numerator + 2 END;
-- One current cell per indicator, area, period and stratum.
CREATE UNIQUE INDEX indicator_cells_current
    ON indicator_cells (indicator_id, area_type, area_code, period, stratum)
    WHERE superseded_by IS NULL;

-- The secret the record keys of the cell key method are drawn with: made at
-- the service's first start, never shown.
CREATE TABLE indicator_secrets (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- The periods a snapshot revises (ids, comma-separated), of those it publishes.
ALTER TABLE indicator_snapshots ADD COLUMN revised TEXT NOT NULL DEFAULT '';
