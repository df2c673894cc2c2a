-- Second factors (issue 14). A user may be required to use one; a client's `require_mfa` lives
-- in its metadata JSON.
ALTER TABLE app_user ADD COLUMN mfa_required BOOLEAN NOT NULL DEFAULT 0 CHECK (mfa_required IN (0, 1));

-- A user's second factors: kind 'totp', 'recovery_codes' (the set's codes are rows of
-- recovery_code) and later 'passkey'. A TOTP secret is sealed (AES-256-GCM under a subkey of
-- the master key, the factor id as associated data), never stored in the clear. `last_step` is
-- the last accepted TOTP time step: a code is accepted only for a later step, by one
-- conditional UPDATE, so each code works once. `data` is kind-specific public JSON.
CREATE TABLE user_factor (
    id            TEXT NOT NULL,
    user_sub      TEXT NOT NULL,
    kind          TEXT NOT NULL,
    name          TEXT NOT NULL,
    sealed_secret BLOB,
    last_step     BIGINT NOT NULL DEFAULT -1,
    data          TEXT,
    created_at    BIGINT NOT NULL,
    last_used_at  BIGINT,
    CONSTRAINT user_factor_pkey PRIMARY KEY (id)
);
CREATE INDEX user_factor_user_sub_idx ON user_factor (user_sub);

-- Recovery codes, as keyed hashes (HMAC-SHA-256 under a subkey of the master key, over the
-- user and the code); each is used once by one conditional UPDATE.
CREATE TABLE recovery_code (
    user_sub  TEXT NOT NULL,
    code_hash BLOB NOT NULL,
    factor_id TEXT NOT NULL,
    used_at   BIGINT,
    CONSTRAINT recovery_code_pkey PRIMARY KEY (user_sub, code_hash)
);
CREATE INDEX recovery_code_factor_id_idx ON recovery_code (factor_id);
