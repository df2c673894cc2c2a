-- Work that any node carries out later and that must survive a crash: back-channel logout
-- notifications today (kind `backchannel_logout`, subject the client id), mail later. A node
-- claims a due item by pushing `next_attempt_at` ahead by a lease (`FOR UPDATE SKIP LOCKED`,
-- so nodes take different items); a node that dies mid-delivery leaves it to be claimed again
-- when the lease runs out.
CREATE TABLE outbox (
    outbox_id       BIGINT GENERATED ALWAYS AS IDENTITY,
    kind            TEXT NOT NULL,
    subject         TEXT NOT NULL,
    payload         TEXT NOT NULL,
    -- pending (waiting or claimed), delivered, failed (gave up)
    status          TEXT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    give_up_at      BIGINT NOT NULL,
    last_error      TEXT,
    finished_at     BIGINT,
    CONSTRAINT outbox_pkey PRIMARY KEY (outbox_id)
);
CREATE INDEX outbox_due_idx ON outbox (kind, status, next_attempt_at);
CREATE INDEX outbox_subject_idx ON outbox (kind, subject, outbox_id);

-- The clients that got tokens in a browser session and want to hear when it ends
-- (back-channel logout): one row per session and client, kept while the session may live.
CREATE TABLE session_client (
    sid        TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    user_sub   TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    CONSTRAINT session_client_pkey PRIMARY KEY (sid, client_id)
);
CREATE INDEX session_client_expires_at_idx ON session_client (expires_at);
