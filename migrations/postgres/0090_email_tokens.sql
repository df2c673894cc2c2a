-- Links sent by mail (password reset, email verification). Only a hash of each link's token
-- is stored. A user has at most one outstanding link per purpose: a new request replaces the
-- older link in the same upsert, so requests from the unauthenticated "Forgot password?" form
-- can never grow this table beyond one row per user and purpose. Redeeming a link deletes its
-- row in one statement, so of racing redemptions exactly one finds it.
CREATE TABLE email_token (
    user_sub   TEXT NOT NULL,
    -- password_reset | email_verification | signup (a sign-up waiting for its address to be
    -- confirmed: user_sub is then "signup:" and the chosen username, and bound_to the sealed
    -- sign-up; the account is created only when the link is used)
    purpose    TEXT NOT NULL,
    token_hash BYTEA NOT NULL,
    -- What the link is bound to: for a password reset a MAC of the password hash it was
    -- issued under (a changed password kills the link), for a verification the address,
    -- for a sign-up the sign-up itself, sealed.
    bound_to   TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    CONSTRAINT email_token_pkey PRIMARY KEY (user_sub, purpose),
    CONSTRAINT email_token_token_hash_key UNIQUE (token_hash)
);
CREATE INDEX email_token_expires_at_idx ON email_token (expires_at);

-- "Forgot password?" accepts an email address: users are found by their email claim, in
-- any case.
CREATE INDEX app_user_email_idx ON app_user (lower(claims::jsonb ->> 'email'));
