-- Service accounts act through explicit scopes, never as platform admins. Accounts that
-- existed before get none: an operator grants what each needs by creating a new account.
ALTER TABLE service_accounts ADD COLUMN scopes text[] NOT NULL DEFAULT '{}'
  CONSTRAINT service_accounts_scopes_known
  CHECK (scopes <@ ARRAY['payments:write', 'payouts:write', 'users:read']::text[]);

-- The token pair a rotation produced, sealed with the data key, so that the same refresh
-- token presented again within the grace window (two tabs refreshing at once) gets that
-- same pair instead of ending the session.
ALTER TABLE refresh_tokens ADD COLUMN successor_sealed bytea;
