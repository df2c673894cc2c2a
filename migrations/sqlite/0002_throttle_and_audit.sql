-- Throttling state and the audit log, shared by every node. Twin: migrations/postgres.

-- Failed attempts per key ("login:account:NAME", "login:ip:ADDR", "client:ID", "client-ip:ADDR").
-- Failures count within a window that ends at expires_at; a later failure after that starts a
-- new window. locked_until is when the key may try again (0: not locked).
CREATE TABLE throttle (
    throttle_key TEXT NOT NULL,
    failures     BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    locked_until BIGINT NOT NULL DEFAULT 0,
    CONSTRAINT throttle_pkey PRIMARY KEY (throttle_key)
);
CREATE INDEX throttle_expires_at_idx ON throttle (expires_at);

-- Security events (logins, lockouts, consent, reuse detection, admin changes). detail is a
-- JSON object that never holds a secret, password, token or code.
CREATE TABLE audit_event (
    event_id    INTEGER PRIMARY KEY AUTOINCREMENT,
    occurred_at BIGINT NOT NULL,
    kind        TEXT NOT NULL,
    user_sub    TEXT,
    client_id   TEXT,
    ip          TEXT,
    detail      TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_event_kind_idx ON audit_event (kind, event_id);
CREATE INDEX audit_event_user_sub_idx ON audit_event (user_sub, event_id);
CREATE INDEX audit_event_client_id_idx ON audit_event (client_id, event_id);
CREATE INDEX audit_event_occurred_at_idx ON audit_event (occurred_at);
