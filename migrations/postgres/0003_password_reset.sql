-- An administrator can require a user to choose a new password at the next login.
ALTER TABLE app_user ADD COLUMN password_reset_required BOOLEAN NOT NULL DEFAULT FALSE;
