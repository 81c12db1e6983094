-- Identity and tenancy: organizations, teams, users, credentials, role grants,
-- sessions and refresh tokens, signing keys, service accounts.
--
-- Runs as lyceum_identity_owner with search_path = identity. The runtime role
-- lyceum_identity is granted data privileges afterwards and is subject to every
-- policy below.

-- The caller as the service set it for this transaction (see platform::db::begin).
CREATE FUNCTION current_user_id() RETURNS uuid
LANGUAGE sql STABLE AS $$
  SELECT nullif(current_setting('lyceum.user_id', true), '')::uuid
$$;

CREATE FUNCTION current_org_id() RETURNS uuid
LANGUAGE sql STABLE AS $$
  SELECT nullif(current_setting('lyceum.org_id', true), '')::uuid
$$;

CREATE FUNCTION has_session_role(role_name text) RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT role_name = ANY (string_to_array(coalesce(current_setting('lyceum.roles', true), ''), ','))
$$;

-- Platform admins, service accounts and the service itself (sign-in, jobs) see everything.
CREATE FUNCTION is_privileged() RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT has_session_role('admin') OR has_session_role('service') OR has_session_role('system')
$$;

-- An org admin acting in the given organization.
CREATE FUNCTION administers(org uuid) RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT org IS NOT NULL AND org = current_org_id() AND has_session_role('org_admin')
$$;

CREATE TABLE organizations (
  id                  uuid PRIMARY KEY,
  name                text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  slug                text NOT NULL CHECK (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$' AND length(slug) <= 63),
  subscription_tier   text NOT NULL DEFAULT 'starter'
                      CHECK (subscription_tier IN ('starter', 'growth', 'enterprise')),
  subscription_status text NOT NULL DEFAULT 'trialing'
                      CHECK (subscription_status IN ('trialing', 'active', 'past_due', 'canceled')),
  company_size        text NOT NULL DEFAULT '' CHECK (length(company_size) <= 50),
  settings            jsonb NOT NULL DEFAULT '{}',
  branding            jsonb NOT NULL DEFAULT '{}',
  created_at          timestamptz NOT NULL DEFAULT now(),
  updated_at          timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT organizations_slug_key UNIQUE (slug)
);

CREATE TABLE users (
  id              uuid PRIMARY KEY,
  organization_id uuid REFERENCES organizations (id) ON DELETE SET NULL,
  email           text NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
  full_name       text NOT NULL DEFAULT '' CHECK (length(full_name) <= 200),
  avatar_url      text NOT NULL DEFAULT '' CHECK (length(avatar_url) <= 2048),
  company_name    text NOT NULL DEFAULT '' CHECK (length(company_name) <= 200),
  metadata        jsonb NOT NULL DEFAULT '{}',
  status          text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'inactive', 'suspended')),
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now()
);
-- Emails are unique whatever their letter case.
CREATE UNIQUE INDEX users_email_key ON users (lower(email));
CREATE INDEX users_organization_idx ON users (organization_id, id);

CREATE TABLE password_credentials (
  user_id       uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
  password_hash text NOT NULL,
  updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE teams (
  id              uuid PRIMARY KEY,
  organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
  name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  description     text NOT NULL DEFAULT '' CHECK (length(description) <= 2000),
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX teams_organization_name_key ON teams (organization_id, lower(name));

CREATE TABLE team_members (
  team_id         uuid NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
  user_id         uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  -- Copied from the team so that policies need no join.
  organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
  role            text NOT NULL DEFAULT 'member' CHECK (role IN ('lead', 'member')),
  joined_at       timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (team_id, user_id)
);
CREATE INDEX team_members_user_idx ON team_members (user_id);

CREATE TABLE role_grants (
  id              uuid PRIMARY KEY,
  user_id         uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  role            text NOT NULL CHECK (role IN ('admin', 'org_admin', 'team_lead', 'member',
                                                'instructor', 'expert', 'client', 'user')),
  organization_id uuid REFERENCES organizations (id) ON DELETE CASCADE,
  expires_at      timestamptz,
  granted_by      uuid,
  created_at      timestamptz NOT NULL DEFAULT now(),
  -- Org admins and team leads act within an organization.
  CHECK (role NOT IN ('org_admin', 'team_lead') OR organization_id IS NOT NULL)
);
-- One grant of a role per user and scope (NULL scope = platform-wide).
CREATE UNIQUE INDEX role_grants_user_role_scope_key
  ON role_grants (user_id, role, coalesce(organization_id, '00000000-0000-0000-0000-000000000000'));
CREATE INDEX role_grants_organization_idx ON role_grants (organization_id);

-- A session is one refresh-token family: every rotation stays in it, and reuse of a
-- rotated token revokes it whole.
CREATE TABLE sessions (
  id             uuid PRIMARY KEY,
  user_id        uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  created_at     timestamptz NOT NULL DEFAULT now(),
  expires_at     timestamptz NOT NULL,
  revoked_at     timestamptz,
  revoked_reason text CHECK (revoked_reason IN ('logout', 'reuse_detected', 'user_suspended',
                                                'password_changed'))
);
CREATE INDEX sessions_user_idx ON sessions (user_id) WHERE revoked_at IS NULL;

CREATE TABLE refresh_tokens (
  id          uuid PRIMARY KEY,
  session_id  uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
  user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  -- SHA-256 of the opaque token; the token itself is never stored.
  token_hash  bytea NOT NULL UNIQUE,
  rotated_at  timestamptz,
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX refresh_tokens_session_idx ON refresh_tokens (session_id);

CREATE TABLE signing_keys (
  kid                   text PRIMARY KEY,
  algorithm             text NOT NULL DEFAULT 'EdDSA' CHECK (algorithm = 'EdDSA'),
  public_key            bytea NOT NULL CHECK (length(public_key) = 32),
  -- AES-256-GCM sealed with the data key.
  private_key_encrypted bytea NOT NULL,
  created_at            timestamptz NOT NULL DEFAULT now(),
  -- Keys after the active one keep verifying until retired.
  retired_at            timestamptz
);
CREATE INDEX signing_keys_created_idx ON signing_keys (created_at DESC) WHERE retired_at IS NULL;

CREATE TABLE service_accounts (
  id                 uuid PRIMARY KEY,
  name               text NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9]+(-[a-z0-9]+)*$' AND length(name) <= 63),
  client_secret_hash text NOT NULL,
  created_by         uuid,
  created_at         timestamptz NOT NULL DEFAULT now(),
  disabled_at        timestamptz
);

-- Row-level security. The owner role (which cannot log in) is exempt; the runtime role is not.
ALTER TABLE organizations        ENABLE ROW LEVEL SECURITY;
ALTER TABLE users                ENABLE ROW LEVEL SECURITY;
ALTER TABLE password_credentials ENABLE ROW LEVEL SECURITY;
ALTER TABLE teams                ENABLE ROW LEVEL SECURITY;
ALTER TABLE team_members         ENABLE ROW LEVEL SECURITY;
ALTER TABLE role_grants          ENABLE ROW LEVEL SECURITY;
ALTER TABLE sessions             ENABLE ROW LEVEL SECURITY;
ALTER TABLE refresh_tokens       ENABLE ROW LEVEL SECURITY;
ALTER TABLE signing_keys         ENABLE ROW LEVEL SECURITY;
ALTER TABLE service_accounts     ENABLE ROW LEVEL SECURITY;

CREATE POLICY organizations_privileged ON organizations USING (is_privileged());
CREATE POLICY organizations_members_read ON organizations FOR SELECT USING (id = current_org_id());
CREATE POLICY organizations_admins_update ON organizations FOR UPDATE
  USING (administers(id)) WITH CHECK (administers(id));

CREATE POLICY users_privileged ON users USING (is_privileged());
CREATE POLICY users_self_read ON users FOR SELECT USING (id = current_user_id());
CREATE POLICY users_self_update ON users FOR UPDATE
  USING (id = current_user_id()) WITH CHECK (id = current_user_id());
CREATE POLICY users_org_admins ON users
  USING (administers(organization_id)) WITH CHECK (administers(organization_id));
-- Members of an organization see each other (names and avatars in team views).
CREATE POLICY users_org_members_read ON users FOR SELECT
  USING (organization_id IS NOT NULL AND organization_id = current_org_id());

CREATE POLICY password_credentials_privileged ON password_credentials USING (is_privileged());
CREATE POLICY password_credentials_self ON password_credentials
  USING (user_id = current_user_id()) WITH CHECK (user_id = current_user_id());

CREATE POLICY teams_privileged ON teams USING (is_privileged());
CREATE POLICY teams_org_read ON teams FOR SELECT USING (organization_id = current_org_id());
CREATE POLICY teams_org_admins ON teams
  USING (administers(organization_id)) WITH CHECK (administers(organization_id));

CREATE POLICY team_members_privileged ON team_members USING (is_privileged());
CREATE POLICY team_members_org_read ON team_members FOR SELECT USING (organization_id = current_org_id());
CREATE POLICY team_members_org_admins ON team_members
  USING (administers(organization_id)) WITH CHECK (administers(organization_id));

CREATE POLICY role_grants_privileged ON role_grants USING (is_privileged());
CREATE POLICY role_grants_self_read ON role_grants FOR SELECT USING (user_id = current_user_id());
-- Org admins manage grants scoped to their organization, never platform-wide ones.
CREATE POLICY role_grants_org_admins ON role_grants
  USING (administers(organization_id)) WITH CHECK (administers(organization_id) AND role <> 'admin');

CREATE POLICY sessions_privileged ON sessions USING (is_privileged());
CREATE POLICY sessions_self ON sessions USING (user_id = current_user_id());

CREATE POLICY refresh_tokens_privileged ON refresh_tokens USING (is_privileged());

-- Public keys are public, private keys are sealed; still only the service itself reads them.
CREATE POLICY signing_keys_privileged ON signing_keys USING (is_privileged());

CREATE POLICY service_accounts_privileged ON service_accounts USING (is_privileged());
