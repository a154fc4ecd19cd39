-- What a delivery carried when it was made, sealed at rest: a re-read returns
-- exactly this, never a new decision on the person's latest record. A made
-- delivery whose trigger was later reversed or ended is 'retracted' and served
-- to no one (the disclosure it made stays listed for subject access).
ALTER TABLE deliveries ADD COLUMN sent_key_id TEXT;
ALTER TABLE deliveries ADD COLUMN sent_nonce BYTEA;
ALTER TABLE deliveries ADD COLUMN sent_ciphertext BYTEA;
