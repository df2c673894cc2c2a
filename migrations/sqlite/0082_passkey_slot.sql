-- The cap of passkeys per user (store/passkeys.rs, MAX_PASSKEYS_PER_USER) held by a unique
-- index instead of a count: each passkey takes one of its user's numbered slots (0 to 9), and
-- two registrations racing for the same slot cannot both commit. (SQLite serialises writers,
-- so a count in the insert statement held there too; the slot keeps both backends alike.)
-- SQLite cannot add a NOT NULL column without a default: the column stays nullable, and
-- every insert sets it.
ALTER TABLE passkey ADD COLUMN slot BIGINT;

-- Existing passkeys are numbered per user in the order they were added.
UPDATE passkey SET slot = (
    SELECT COUNT(*) FROM passkey p
    WHERE p.user_sub = passkey.user_sub
      AND (p.created_at < passkey.created_at
           OR (p.created_at = passkey.created_at AND p.passkey_id < passkey.passkey_id))
);

-- One passkey per slot of a user. It also serves the lookups by user, so the index on
-- user_sub alone goes.
CREATE UNIQUE INDEX passkey_user_sub_slot_key ON passkey (user_sub, slot);
DROP INDEX passkey_user_sub_idx;
