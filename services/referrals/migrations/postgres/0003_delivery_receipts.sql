-- What became of the pushes each release and referral caused, as the sharing
-- service reports it (DeliveryReceiptChanged): the latest receipt of each
-- push, whole, for its sender to see.
CREATE TABLE delivery_receipts (
    delivery_id  TEXT PRIMARY KEY,
    trigger_kind TEXT NOT NULL,
    trigger_id   TEXT NOT NULL,
    receipt      BYTEA NOT NULL
);
CREATE INDEX receipts_by_trigger ON delivery_receipts (trigger_kind, trigger_id);
