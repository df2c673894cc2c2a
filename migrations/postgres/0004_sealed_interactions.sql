-- A pending login or consent now travels sealed (AES-256-GCM) in its own URL and form
-- instead of in a row; the database only remembers which interactions have finished, so
-- that each finishes once. Interactions pending at upgrade time must be started again.
DROP TABLE interaction;

CREATE TABLE finished_interaction (
    interaction_id TEXT NOT NULL,
    expires_at     BIGINT NOT NULL,
    CONSTRAINT finished_interaction_pkey PRIMARY KEY (interaction_id)
);
CREATE INDEX finished_interaction_expires_at_idx ON finished_interaction (expires_at);
