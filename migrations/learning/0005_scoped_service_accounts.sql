-- Service accounts are not platform admins in the database either: no scope of theirs
-- concerns learning's tables today, so their context opens only what is public.
CREATE OR REPLACE FUNCTION is_privileged() RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT has_session_role('admin') AND NOT has_session_role('service')
$$;
