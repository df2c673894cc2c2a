-- Latchkey's initial schema, SQLite dialect. The Postgres twin in migrations/postgres must stay
-- equivalent: the store runs the same SQL text against both.
--
-- Conventions: timestamps are Unix seconds (BIGINT, stored as INTEGER), hashes are the 32-byte
-- SecretHasher output (BLOB), structured values are JSON in TEXT columns. There are no foreign
-- keys on purpose: grants must outlive the client or user they belong to (a revoked grant keeps
-- refusing its access tokens until they expire), and the store deletes dependent rows
-- explicitly, so both dialects behave the same without relying on cascades.
--
-- Constraint names are kept equal to the Postgres ones for readability; SQLite reports a
-- violation as "table.column", which store::sql::conflict_field maps the same way.

-- SQLite's default BINARY collation compares bytes, which keyset pagination relies on; the
-- Postgres schema asks for the "C" collation to get the same order.
CREATE TABLE client (
    client_id   TEXT NOT NULL,
    -- NULL for public clients (token_endpoint_auth_method "none").
    secret_hash BLOB,
    -- protocol::client::ClientMetadata as JSON.
    metadata    TEXT NOT NULL,
    issued_at   BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    CONSTRAINT client_pkey PRIMARY KEY (client_id),
    -- Keyset pagination starts after the empty string, so no id may be empty.
    CONSTRAINT client_client_id_check CHECK (client_id <> '')
);

-- "user" is reserved in SQL, hence app_user.
CREATE TABLE app_user (
    sub           TEXT NOT NULL,
    username      TEXT NOT NULL,
    -- argon2id PHC string.
    password_hash TEXT NOT NULL,
    -- protocol::user::UserClaims as JSON.
    claims        TEXT NOT NULL,
    -- SQLite has no boolean type: 0 or 1.
    disabled      BOOLEAN NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    CONSTRAINT app_user_pkey PRIMARY KEY (sub),
    CONSTRAINT app_user_username_key UNIQUE (username),
    -- Keyset pagination starts after the empty string, so no sub may be empty.
    CONSTRAINT app_user_sub_check CHECK (sub <> '')
);

CREATE TABLE session (
    -- Hash of the random cookie value; the cookie itself is never stored.
    session_hash BLOB NOT NULL,
    sid          TEXT NOT NULL,
    user_sub     TEXT NOT NULL,
    auth_time    BIGINT NOT NULL,
    amr          TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    CONSTRAINT session_pkey PRIMARY KEY (session_hash)
);
CREATE INDEX session_user_sub_idx ON session (user_sub);
CREATE INDEX session_expires_at_idx ON session (expires_at);

CREATE TABLE interaction (
    interaction_id TEXT NOT NULL,
    binding_hash   BLOB NOT NULL,
    request        TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    CONSTRAINT interaction_pkey PRIMARY KEY (interaction_id)
);
CREATE INDEX interaction_expires_at_idx ON interaction (expires_at);

-- One token family. "grant" is reserved in SQL, hence auth_grant. The row is kept, revoked,
-- after its client or user is deleted, until expires_at, so that access tokens of the family
-- stay refused for their whole lifetime.
CREATE TABLE auth_grant (
    grant_id   TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    user_sub   TEXT NOT NULL,
    scope      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT,
    CONSTRAINT auth_grant_pkey PRIMARY KEY (grant_id)
);
CREATE INDEX auth_grant_user_sub_client_id_idx ON auth_grant (user_sub, client_id);
CREATE INDEX auth_grant_client_id_idx ON auth_grant (client_id);
CREATE INDEX auth_grant_expires_at_idx ON auth_grant (expires_at);

CREATE TABLE auth_code (
    code_hash      BLOB NOT NULL,
    grant_id       TEXT NOT NULL,
    client_id      TEXT NOT NULL,
    user_sub       TEXT NOT NULL,
    redirect_uri   TEXT NOT NULL,
    scope          TEXT NOT NULL,
    code_challenge TEXT,
    nonce          TEXT,
    sid            TEXT NOT NULL,
    auth_time      BIGINT NOT NULL,
    amr            TEXT NOT NULL,
    acr            TEXT,
    resource       TEXT,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    -- Set by the one conditional update that redeems the code. The row stays until expires_at
    -- so that a second redemption is recognised as reuse rather than as an unknown code.
    consumed_at    BIGINT,
    CONSTRAINT auth_code_pkey PRIMARY KEY (code_hash)
);
CREATE INDEX auth_code_grant_id_idx ON auth_code (grant_id);
CREATE INDEX auth_code_client_id_idx ON auth_code (client_id);
CREATE INDEX auth_code_user_sub_idx ON auth_code (user_sub);
CREATE INDEX auth_code_expires_at_idx ON auth_code (expires_at);

CREATE TABLE refresh_token (
    token_hash      BLOB NOT NULL,
    grant_id        TEXT NOT NULL,
    client_id       TEXT NOT NULL,
    user_sub        TEXT NOT NULL,
    scope           TEXT NOT NULL,
    sid             TEXT NOT NULL,
    auth_time       BIGINT NOT NULL,
    amr             TEXT NOT NULL,
    resource        TEXT,
    created_at      BIGINT NOT NULL,
    idle_expires_at BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    -- Set when the token is rotated out. Rotated rows are kept until they would have expired,
    -- so that a replayed old token is recognised as reuse and its family revoked.
    rotated_at      BIGINT,
    CONSTRAINT refresh_token_pkey PRIMARY KEY (token_hash)
);
CREATE INDEX refresh_token_grant_id_idx ON refresh_token (grant_id);
CREATE INDEX refresh_token_client_id_idx ON refresh_token (client_id);
CREATE INDEX refresh_token_user_sub_idx ON refresh_token (user_sub);
CREATE INDEX refresh_token_idle_expires_at_idx ON refresh_token (idle_expires_at);
CREATE INDEX refresh_token_expires_at_idx ON refresh_token (expires_at);

-- Individually revoked access tokens (RFC 7009), kept until the token would have expired.
CREATE TABLE revoked_access_token (
    jti        TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    CONSTRAINT revoked_access_token_pkey PRIMARY KEY (jti)
);
CREATE INDEX revoked_access_token_expires_at_idx ON revoked_access_token (expires_at);

-- One remembered consent per user and client.
CREATE TABLE consent (
    user_sub   TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    scope      TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT consent_pkey PRIMARY KEY (user_sub, client_id)
);
CREATE INDEX consent_client_id_idx ON consent (client_id);

CREATE TABLE signing_key (
    kid            TEXT NOT NULL,
    alg            TEXT NOT NULL,
    -- PKCS#8 private key sealed with the master key (crypto::Sealer, kid as associated data).
    private_sealed BLOB NOT NULL,
    -- Public JWK as JSON.
    public_jwk     TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    -- Set when a newer key replaced this one; the key stays published until deleted.
    retired_at     BIGINT,
    CONSTRAINT signing_key_pkey PRIMARY KEY (kid)
);

-- Counters that nodes poll to invalidate their caches. Each row is bumped in the same
-- transaction as the change it announces; the 'keys' row doubles as the lock that serialises
-- key insertion and rotation across nodes.
CREATE TABLE change_version (
    name    TEXT NOT NULL,
    version BIGINT NOT NULL,
    CONSTRAINT change_version_pkey PRIMARY KEY (name)
);
INSERT INTO change_version (name, version) VALUES ('clients', 0), ('keys', 0);
