-- Scheduled key rotation. A key is published before it signs: until `activates_at` it is
-- `next`, then `active`; `retired_at` is the moment its successor takes over (set when the
-- successor is scheduled, so it may lie in the future), after which it is `retired` and stays
-- published until every token it signed has expired. Existing keys started signing when made.
ALTER TABLE signing_key ADD COLUMN activates_at BIGINT;
UPDATE signing_key SET activates_at = created_at;
ALTER TABLE signing_key ALTER COLUMN activates_at SET NOT NULL;
