-- One row per refresh-token family, whatever the number of rotations (issue 16). A token
-- names its family (the grant) and generation; the row holds the current generation and the
-- keyed hash of the current token. Rotation is one conditional UPDATE of this row, and a
-- token of an older generation is recognised as reuse without keeping any row for it.
CREATE TABLE refresh_family (
    grant_id        TEXT NOT NULL,
    generation      BIGINT NOT NULL,
    token_hash      BLOB NOT NULL,
    client_id       TEXT NOT NULL,
    user_sub        TEXT NOT NULL,
    scope           TEXT NOT NULL,
    sid             TEXT NOT NULL,
    auth_time       BIGINT NOT NULL,
    amr             TEXT NOT NULL,
    resource        TEXT,
    -- When the current generation was issued.
    created_at      BIGINT NOT NULL,
    -- Never later than expires_at (the store caps it), so housekeeping needs only this one.
    idle_expires_at BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    CONSTRAINT refresh_family_pkey PRIMARY KEY (grant_id)
);
CREATE INDEX refresh_family_user_sub_client_id_idx ON refresh_family (user_sub, client_id);
CREATE INDEX refresh_family_client_id_idx ON refresh_family (client_id);
CREATE INDEX refresh_family_idle_expires_at_idx ON refresh_family (idle_expires_at);

-- Tokens issued before this migration (one opaque secret, no family in it) stay valid: each
-- live family's current token becomes generation 0 of its family row, with the same hash.
-- The old table is kept, read-only, as the map from such a token's hash to its family:
-- generation 0 for the token that was current, -1 (older than any) for one rotated out, so
-- replaying it is still reuse. Housekeeping drains it as its rows expire.
INSERT OR IGNORE INTO refresh_family (grant_id, generation, token_hash, client_id, user_sub, scope, sid,
                            auth_time, amr, resource, created_at, idle_expires_at, expires_at)
SELECT rt.grant_id, 0, rt.token_hash, rt.client_id, rt.user_sub,
       rt.scope, rt.sid, rt.auth_time, rt.amr, rt.resource, rt.created_at,
       MIN(rt.idle_expires_at, rt.expires_at), rt.expires_at
FROM refresh_token rt JOIN auth_grant g ON g.grant_id = rt.grant_id AND g.revoked_at IS NULL
WHERE rt.rotated_at IS NULL
ORDER BY rt.grant_id, rt.created_at DESC;

ALTER TABLE refresh_token RENAME TO legacy_refresh_token;
-- Only lookups by hash (primary key), deletions by user or client, and expiry remain.
DROP INDEX refresh_token_grant_id_idx;
DROP INDEX refresh_token_idle_expires_at_idx;
