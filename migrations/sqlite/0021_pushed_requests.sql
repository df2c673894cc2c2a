-- Pushed authorization requests (RFC 9126): the validated parameters, held for 60 seconds
-- under the hash of their request_uri's random part, redeemed once by any node.
CREATE TABLE pushed_request (
    request_hash BLOB NOT NULL,
    client_id    TEXT NOT NULL,
    params       TEXT NOT NULL,
    expires_at   BIGINT NOT NULL,
    CONSTRAINT pushed_request_pkey PRIMARY KEY (request_hash)
);
CREATE INDEX pushed_request_expires_at_idx ON pushed_request (expires_at);
