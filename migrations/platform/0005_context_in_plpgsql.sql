-- set_tenant_context() in PL/pgSQL: a SQL function that cannot be inlined (this one sets
-- settings) is parsed and planned again on every call, a PL/pgSQL one plans once per
-- session. It opens every request's transaction, so the difference shows in each.
-- Only pg_catalog's set_config: nothing to resolve through a search path.
CREATE OR REPLACE FUNCTION set_tenant_context(user_id text, org_id text, roles text) RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  PERFORM pg_catalog.set_config('lyceum.user_id', coalesce(user_id, ''), true),
          pg_catalog.set_config('lyceum.org_id', coalesce(org_id, ''), true),
          pg_catalog.set_config('lyceum.roles', coalesce(roles, ''), true);
END
$$;
