-- View for dashboards: users ranked by their total cost.
SELECT
  RANK() OVER (ORDER BY SUM(f.cost_usd) DESC) AS cost_rank,
  u.user_email,
  u.first_seen,
  SUM(f.requests) AS requests,
  ROUND(SUM(f.cost_usd), 2) AS cost_usd
FROM {{ ref('fct_usage_daily') }} AS f
JOIN {{ ref('dim_users') }} AS u ON u.user_email = f.user_email
GROUP BY u.user_email, u.first_seen
