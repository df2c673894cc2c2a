-- Device authorization grants (RFC 8628): a device code (stored by hash) and the user code a
-- person types on /device, until the device's poll takes the approved grant (single use) or
-- the authorization expires.
CREATE TABLE device_authorization (
    device_code_hash BYTEA NOT NULL,
    user_code        TEXT NOT NULL,
    client_id        TEXT NOT NULL,
    scope            TEXT NOT NULL,
    resource         TEXT,
    status           TEXT NOT NULL,
    user_sub         TEXT,
    sid              TEXT,
    auth_time        BIGINT,
    amr              TEXT,
    interval_secs    BIGINT NOT NULL,
    last_polled_at   BIGINT,
    created_at       BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL,
    CONSTRAINT device_authorization_pkey PRIMARY KEY (device_code_hash),
    CONSTRAINT device_authorization_user_code_key UNIQUE (user_code)
);
CREATE INDEX device_authorization_expires_at_idx ON device_authorization (expires_at);
