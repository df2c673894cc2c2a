-- Client secrets with overlap: the current secret's creation and expiry (NULL: it does not
-- expire; RFC 7591 client_secret_expires_at 0), and at most one previous secret kept working
-- until its own expiry after a rotation that asked for it. Both live on the client row, so
-- the client record a node caches carries both hashes and checking a secret needs no query.
ALTER TABLE client ADD COLUMN secret_created_at BIGINT;
ALTER TABLE client ADD COLUMN secret_expires_at BIGINT;
ALTER TABLE client ADD COLUMN previous_secret_hash BLOB;
ALTER TABLE client ADD COLUMN previous_secret_created_at BIGINT;
ALTER TABLE client ADD COLUMN previous_secret_expires_at BIGINT;
UPDATE client SET secret_created_at = updated_at WHERE secret_hash IS NOT NULL;
