-- Passkeys (WebAuthn credentials), one row each. The credential is webauthn-rs' serialized
-- Passkey (public key, algorithm, flags): nothing in it is secret, so it is stored as JSON.
-- sign_count is the authenticator's signature counter as last seen; it is moved forward by one
-- conditional UPDATE per sign-in (store/passkeys.rs), which refuses a counter that did not
-- increase. No foreign key, like the rest of the schema: deleting a user deletes its passkeys
-- explicitly (store/users.rs).
CREATE TABLE passkey (
    -- Random; names the passkey in the account page and the admin API (a factor id).
    passkey_id    TEXT COLLATE "C" NOT NULL,
    -- The credential id the authenticator chose (at most 1023 bytes, WebAuthn §5.8.3).
    credential_id BYTEA NOT NULL,
    user_sub      TEXT COLLATE "C" NOT NULL,
    name          TEXT NOT NULL,
    credential    TEXT NOT NULL,
    sign_count    BIGINT NOT NULL,
    created_at    BIGINT NOT NULL,
    last_used_at  BIGINT,
    CONSTRAINT passkey_pkey PRIMARY KEY (passkey_id),
    -- A credential belongs to one account only: registering it twice is refused.
    CONSTRAINT passkey_credential_id_key UNIQUE (credential_id)
);
CREATE INDEX passkey_user_sub_idx ON passkey (user_sub);
