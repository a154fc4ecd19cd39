-- When a call shows that two stored people are one (a later record carries
-- identifiers each was first seen with), the other person's history moves to
-- the one the person rule picks and their row stays behind as a tombstone,
-- holding no identifiers and naming the person it was merged into.
ALTER TABLE persons ADD COLUMN merged_into TEXT;
