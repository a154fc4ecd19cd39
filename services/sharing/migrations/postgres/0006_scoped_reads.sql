-- Who may read a person's consents and run subject access for them: the
-- organisations with a relationship to the person. The releasing prison is
-- one of them, so releases keep it.
ALTER TABLE releases ADD COLUMN releasing_prison TEXT;

-- What each audit entry records: a disclosure decision (the default, and
-- every entry before this), a read of consents, or subject access.
ALTER TABLE audit_log ADD COLUMN action TEXT NOT NULL DEFAULT 'AUDITED_ACTION_UNSPECIFIED';
