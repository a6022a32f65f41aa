-- View for dashboards: each model's share of the day's requests, and its cost.
SELECT
  f.usage_date,
  m.provider,
  m.model,
  SUM(f.requests) AS requests,
  ROUND(SUM(f.requests) / SUM(SUM(f.requests)) OVER (PARTITION BY f.usage_date), 4) AS request_share,
  ROUND(SUM(f.cost_usd), 2) AS cost_usd
FROM {{ ref('fct_usage_daily') }} AS f
JOIN {{ ref('dim_models') }} AS m ON m.model = f.model AND m.provider = f.provider
GROUP BY f.usage_date, m.provider, m.model
