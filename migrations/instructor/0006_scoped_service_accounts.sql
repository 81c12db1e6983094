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

-- payments:write — record payments for payers, report their outcome, refund them (which
-- books the negative revenue transaction), reading the fee that applies.
CREATE POLICY payments_scope ON payments
  USING (has_scope('payments:write')) WITH CHECK (has_scope('payments:write'));
CREATE POLICY payment_refunds_scope ON payment_refunds
  USING (has_scope('payments:write')) WITH CHECK (has_scope('payments:write'));
CREATE POLICY revenue_transactions_payments_scope ON revenue_transactions
  USING (has_scope('payments:write')) WITH CHECK (has_scope('payments:write'));
CREATE POLICY instructor_fees_payments_scope ON instructor_fees FOR SELECT
  USING (has_scope('payments:write'));

-- payouts:write — pay instructors their pending earnings.
CREATE POLICY payouts_scope ON payouts
  USING (has_scope('payouts:write')) WITH CHECK (has_scope('payouts:write'));
CREATE POLICY revenue_transactions_payouts_scope ON revenue_transactions
  USING (has_scope('payouts:write')) WITH CHECK (has_scope('payouts:write'));

REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA instructor FROM PUBLIC;
