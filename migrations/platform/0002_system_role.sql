-- The event tables belong to the service's system role, which bypasses row-level
-- security and is reached only by an explicit SET ROLE. A tenant context naming
-- 'system' no longer opens them: the runtime role under any caller's context may only
-- append to the outbox in its own transaction.
DROP POLICY outbox_system ON outbox;
DROP POLICY inbox_system ON inbox;
DROP POLICY dead_letters_system ON dead_letters;
