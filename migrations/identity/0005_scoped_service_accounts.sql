-- Service accounts are not platform admins in the database either: their context
-- carries 'service' and one 'scope:<scope>' per scope, and only policies that name a
-- scope let them in.
CREATE OR REPLACE FUNCTION is_privileged() RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT has_session_role('admin') AND NOT has_session_role('service')
$$;

CREATE FUNCTION has_scope(scope text) RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT has_session_role('service') AND has_session_role('scope:' || scope)
$$;

-- users:read — GetUser, BatchGetUsers, ListUsers.
CREATE POLICY users_scope_read ON users FOR SELECT USING (has_scope('users:read'));

REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA identity FROM PUBLIC;
