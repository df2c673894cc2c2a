-- What the account page lists of each session (issue 20, point 5): the device it was started
-- on (a short summary of the browser's User-Agent such as "Firefox on Linux", never the header
-- itself), the client address it was started from, and when it was last used. `last_used_at`
-- is written at most once a minute per session (`accounts::session::LAST_USE_GRANULARITY`), so
-- the requests that read a session do not write on every hit.
ALTER TABLE session ADD COLUMN device TEXT NOT NULL DEFAULT '';
ALTER TABLE session ADD COLUMN ip TEXT;
ALTER TABLE session ADD COLUMN last_used_at BIGINT NOT NULL DEFAULT 0;

-- Sessions started before this migration were last known to be used when they started.
UPDATE session SET last_used_at = created_at;
