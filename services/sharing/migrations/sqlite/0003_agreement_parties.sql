-- The disclosing side of each agreement: the organisation codes (data
-- controllers) whose governance may revoke it, comma-separated. Agreements
-- registered before parties were recorded have none: only national governance
-- may revoke them.
ALTER TABLE agreements ADD COLUMN disclosing_parties TEXT NOT NULL DEFAULT '';
