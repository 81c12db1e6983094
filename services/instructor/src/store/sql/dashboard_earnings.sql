-- Per currency: never one sum over several currencies.
SELECT currency,
       sum(instructor_earnings_minor)::bigint AS "total_minor!",
       coalesce(sum(instructor_earnings_minor) FILTER (WHERE payout_status = 'pending'), 0)::bigint
         AS "pending_minor!"
FROM revenue_transactions
WHERE instructor_id = $1
GROUP BY currency
ORDER BY currency
