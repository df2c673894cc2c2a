-- Values that may be used once until they expire, shared by every node: the `jti` of a
-- client's authentication assertion (private_key_jwt) and, later, of DPoP proofs. A key is a
-- purpose-prefixed digest, so its length is fixed whatever a client sends.
CREATE TABLE used_once (
    use_key    TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    CONSTRAINT used_once_pkey PRIMARY KEY (use_key)
);
CREATE INDEX used_once_expires_at_idx ON used_once (expires_at);
