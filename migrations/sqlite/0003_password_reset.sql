-- An administrator can require a user to choose a new password at the next login.
ALTER TABLE app_user ADD COLUMN password_reset_required BOOLEAN NOT NULL DEFAULT 0
    CHECK (password_reset_required IN (0, 1));
