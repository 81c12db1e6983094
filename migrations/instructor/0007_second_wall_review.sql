-- The second wall, tightened after review: each service-account scope opens only the
-- statements its RPCs run — no deletes, no sales booked by hand, payouts that only mark
-- pending earnings paid — and payments:write reads the enrollment projection that fixes
-- a sale's fee for the enrollment's instructor.

DROP POLICY payments_scope ON payments;
CREATE POLICY payments_scope_read ON payments FOR SELECT USING (has_scope('payments:write'));
CREATE POLICY payments_scope_insert ON payments FOR INSERT WITH CHECK (has_scope('payments:write'));
CREATE POLICY payments_scope_update ON payments FOR UPDATE
  USING (has_scope('payments:write')) WITH CHECK (has_scope('payments:write'));

DROP POLICY payment_refunds_scope ON payment_refunds;
CREATE POLICY payment_refunds_scope_read ON payment_refunds FOR SELECT USING (has_scope('payments:write'));
CREATE POLICY payment_refunds_scope_insert ON payment_refunds FOR INSERT
  WITH CHECK (has_scope('payments:write'));

-- A refund books its negative transaction; sales come from learning's events only.
DROP POLICY revenue_transactions_payments_scope ON revenue_transactions;
CREATE POLICY revenue_transactions_payments_scope_read ON revenue_transactions FOR SELECT
  USING (has_scope('payments:write'));
CREATE POLICY revenue_transactions_payments_scope_refund ON revenue_transactions FOR INSERT
  WITH CHECK (has_scope('payments:write') AND transaction_type = 'refund' AND amount_minor < 0
              AND payout_status = 'pending' AND payout_id IS NULL);

CREATE POLICY enrollment_projection_payments_scope ON enrollment_projection FOR SELECT
  USING (has_scope('payments:write'));

-- A payout marks pending earnings paid and records itself; nothing else.
DROP POLICY revenue_transactions_payouts_scope ON revenue_transactions;
CREATE POLICY revenue_transactions_payouts_scope_read ON revenue_transactions FOR SELECT
  USING (has_scope('payouts:write'));
CREATE POLICY revenue_transactions_payouts_scope_settle ON revenue_transactions FOR UPDATE
  USING (has_scope('payouts:write') AND payout_status = 'pending')
  WITH CHECK (has_scope('payouts:write') AND payout_status = 'paid' AND payout_id IS NOT NULL);
DROP POLICY payouts_scope ON payouts;
CREATE POLICY payouts_scope_read ON payouts FOR SELECT USING (has_scope('payouts:write'));
CREATE POLICY payouts_scope_insert ON payouts FOR INSERT WITH CHECK (has_scope('payouts:write'));

-- Callers (anyone but the service itself and platform admins) change a transaction only by
-- settling it: every figure stays as booked.
CREATE FUNCTION revenue_transactions_column_rules() RETURNS trigger
LANGUAGE plpgsql SET search_path = instructor, pg_temp AS $$
BEGIN
  IF acting_for_caller() AND NOT is_privileged()
     AND (ROW(NEW.id, NEW.instructor_id, NEW.organization_id, NEW.transaction_type, NEW.course_id,
              NEW.enrollment_id, NEW.payment_id, NEW.refund_id, NEW.student_id, NEW.amount_minor,
              NEW.currency, NEW.fee_bps, NEW.platform_fee_minor, NEW.instructor_earnings_minor,
              NEW.created_at)
          IS DISTINCT FROM
          ROW(OLD.id, OLD.instructor_id, OLD.organization_id, OLD.transaction_type, OLD.course_id,
              OLD.enrollment_id, OLD.payment_id, OLD.refund_id, OLD.student_id, OLD.amount_minor,
              OLD.currency, OLD.fee_bps, OLD.platform_fee_minor, OLD.instructor_earnings_minor,
              OLD.created_at)
          OR NOT (OLD.payout_status = 'pending' AND NEW.payout_status = 'paid'
                  AND OLD.payout_id IS NULL AND NEW.payout_id IS NOT NULL)) THEN
    RAISE EXCEPTION 'a caller only settles pending earnings' USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END
$$;
CREATE TRIGGER revenue_transactions_column_rules BEFORE UPDATE ON revenue_transactions
  FOR EACH ROW EXECUTE FUNCTION revenue_transactions_column_rules();

REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA instructor FROM PUBLIC;
