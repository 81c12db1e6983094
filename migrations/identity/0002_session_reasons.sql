-- Sessions also end when the user's roles are taken away, so that a revoked role stops
-- working at once instead of when the access token expires.
ALTER TABLE sessions DROP CONSTRAINT sessions_revoked_reason_check;
ALTER TABLE sessions ADD CONSTRAINT sessions_revoked_reason_check
  CHECK (revoked_reason IN ('logout', 'reuse_detected', 'user_suspended', 'password_changed', 'roles_revoked'));
