-- A sale is one per succeeded payment (an enrollment reopened and paid again is a new
-- sale); refund request ids are idempotency keys within their payment.
DROP INDEX revenue_transactions_sale_key;
CREATE UNIQUE INDEX revenue_transactions_sale_key ON revenue_transactions (payment_id)
  WHERE transaction_type = 'course_enrollment';
CREATE INDEX revenue_transactions_payment_idx ON revenue_transactions (payment_id);

ALTER TABLE payment_refunds DROP CONSTRAINT payment_refunds_request_id_key;
ALTER TABLE payment_refunds ADD CONSTRAINT payment_refunds_request_key UNIQUE (payment_id, request_id);
