-- Every field of a decision in its audit entry (and so in its hash): the
-- categories refused beside those permitted, the disclosure made, the
-- delivery decided and what the decision was taken at. Entries before this
-- hold none (empty, as they were hashed).
ALTER TABLE audit_log ADD COLUMN refused_categories TEXT NOT NULL DEFAULT '';
ALTER TABLE audit_log ADD COLUMN disclosure_id TEXT NOT NULL DEFAULT '';
ALTER TABLE audit_log ADD COLUMN delivery_id TEXT NOT NULL DEFAULT '';
ALTER TABLE audit_log ADD COLUMN trigger_kind TEXT NOT NULL DEFAULT '';
ALTER TABLE audit_log ADD COLUMN trigger_id TEXT NOT NULL DEFAULT '';
