-- Dynamic client registration (RFC 7591/7592): initial access tokens an operator hands out
-- (hashed, with the uses left), and each dynamically registered client's registration access
-- token (hashed), which reads, updates and deletes its registration.
CREATE TABLE initial_access_token (
    token_hash BLOB NOT NULL,
    uses_left  BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    CONSTRAINT initial_access_token_pkey PRIMARY KEY (token_hash)
);
CREATE INDEX initial_access_token_expires_at_idx ON initial_access_token (expires_at);

CREATE TABLE client_registration (
    client_id  TEXT NOT NULL,
    token_hash BLOB NOT NULL,
    created_at BIGINT NOT NULL,
    CONSTRAINT client_registration_pkey PRIMARY KEY (client_id)
);
