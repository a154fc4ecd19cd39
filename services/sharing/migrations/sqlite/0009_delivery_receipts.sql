-- Two-level acknowledgement of pushes, for their senders to see: when a push
-- falls due, when its recipient read it (made), when the recipient said it
-- had processed it, and when it was found not read by its due time. Pushes
-- owed before this have no due time and are never found overdue.
ALTER TABLE deliveries ADD COLUMN due_by TEXT;
ALTER TABLE deliveries ADD COLUMN made_at TEXT;
ALTER TABLE deliveries ADD COLUMN processed_at TEXT;
ALTER TABLE deliveries ADD COLUMN overdue_at TEXT;
CREATE INDEX deliveries_falling_due ON deliveries (due_by)
    WHERE state = 'pending' AND overdue_at IS NULL;
