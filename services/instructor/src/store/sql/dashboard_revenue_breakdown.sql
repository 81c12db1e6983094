SELECT transaction_type, currency,
       count(*) AS "transaction_count!",
       sum(amount_minor)::bigint AS "gross_minor!",
       sum(platform_fee_minor)::bigint AS "fees_minor!",
       sum(instructor_earnings_minor)::bigint AS "earnings_minor!"
FROM revenue_transactions
WHERE instructor_id = $1 AND created_at >= $2 AND created_at < $3
GROUP BY transaction_type, currency
ORDER BY transaction_type, currency
