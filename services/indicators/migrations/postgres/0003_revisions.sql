-- Revisions: a period whose figures change after it was published is
-- published again. Its earlier cells stay (each release is kept, as it was
-- seen) but are marked superseded by the snapshot that revised them; what
-- the API shows is the cells not superseded. Each cell also keeps what the
-- next revision's audit must know of it: its true counts then and the
-- attacker's intervals for them. These are never shown.
ALTER TABLE indicator_cells
    DROP CONSTRAINT indicator_cells_indicator_id_area_type_area_code_period_str_key;
ALTER TABLE indicator_cells
    ADD COLUMN revision         INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN superseded_by    BIGINT REFERENCES indicator_snapshots (sequence),
    ADD COLUMN true_denominator BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN true_numerator   BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN known_den_lo     BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN known_den_hi     BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN known_num_lo     BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN known_num_hi     BIGINT NOT NULL DEFAULT 0;
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
