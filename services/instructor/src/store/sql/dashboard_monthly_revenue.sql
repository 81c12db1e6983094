SELECT date_trunc('month', created_at) AS "month!",
       currency,
       sum(amount_minor)::bigint AS "gross_minor!",
       sum(instructor_earnings_minor)::bigint AS "earnings_minor!",
       count(*) AS "transaction_count!"
FROM revenue_transactions
WHERE instructor_id = $1
  AND created_at >= date_trunc('month', now()) - make_interval(months => $2 - 1)
GROUP BY 1, currency
ORDER BY 1, currency
