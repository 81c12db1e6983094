-- Money per currency: payouts settle one currency and are idempotent on the caller's
-- request id; each refund keeps the fee it returned, so that a refund made before its
-- sale was booked is booked with the sale, with the same split.

ALTER TABLE payment_refunds ADD COLUMN fee_minor bigint NOT NULL DEFAULT 0 CHECK (fee_minor >= 0);
UPDATE payment_refunds r SET fee_minor = -t.platform_fee_minor
  FROM revenue_transactions t WHERE t.refund_id = r.id;
ALTER TABLE payment_refunds ADD CONSTRAINT payment_refunds_fee_check CHECK (fee_minor <= amount_minor);

ALTER TABLE payouts
  ADD COLUMN request_id text,
  ADD COLUMN currency text;
-- Payouts made before this migration: their own id stands for the request id, and
-- their currency is the one of the transactions they paid (they summed every currency;
-- the smallest code names a mixed one).
UPDATE payouts p SET request_id = p.id::text,
  currency = coalesce((SELECT min(t.currency) FROM revenue_transactions t WHERE t.payout_id = p.id), 'USD');
ALTER TABLE payouts
  ALTER COLUMN request_id SET NOT NULL,
  ALTER COLUMN currency SET NOT NULL,
  ADD CONSTRAINT payouts_request_key UNIQUE (request_id),
  ADD CONSTRAINT payouts_request_id_check CHECK (length(request_id) BETWEEN 1 AND 200),
  ADD CONSTRAINT payouts_currency_check CHECK (currency ~ '^[A-Z]{3}$');
-- Earlier payouts could net to nothing or less; new ones pay a positive amount.
ALTER TABLE payouts ADD CONSTRAINT payouts_amount_check CHECK (amount_minor > 0 AND transaction_count > 0) NOT VALID;

-- ListPayouts pages in (created_at, id) order.
DROP INDEX payouts_instructor_idx;
CREATE INDEX payouts_instructor_idx ON payouts (instructor_id, created_at DESC, id DESC);
-- A payout takes the pending transactions of one currency.
DROP INDEX revenue_transactions_pending_idx;
CREATE INDEX revenue_transactions_pending_idx ON revenue_transactions (instructor_id, currency)
  WHERE payout_status = 'pending';
