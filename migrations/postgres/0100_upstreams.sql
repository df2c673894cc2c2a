-- Upstream identity providers ("Log in with …") and the identities they vouch for.
-- upstream: one row per provider; its settings as JSON (protocol::upstream::UpstreamSettings)
-- and its client secret sealed with AES-256-GCM under a subkey of the master key (the
-- upstream id is the associated data, so a sealed secret cannot be moved to another row).
CREATE TABLE upstream (
    upstream_id   TEXT NOT NULL,
    settings      TEXT NOT NULL,
    secret_sealed BYTEA NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    CONSTRAINT upstream_pkey PRIMARY KEY (upstream_id)
);

-- An upstream identity (upstream id + the subject it names) belongs to exactly one local
-- user: the primary key makes a second link of the same identity a conflict, so two nodes
-- racing to link or create for one identity cannot both win.
CREATE TABLE upstream_identity (
    upstream_id TEXT NOT NULL,
    subject     TEXT NOT NULL,
    user_sub    TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    CONSTRAINT upstream_identity_pkey PRIMARY KEY (upstream_id, subject)
);
CREATE INDEX upstream_identity_user_sub_idx ON upstream_identity (user_sub);
