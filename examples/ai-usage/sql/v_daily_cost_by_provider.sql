-- View for dashboards: cost, requests and tokens per day and provider.
SELECT
  f.usage_date,
  p.provider,
  SUM(f.requests) AS requests,
  SUM(f.input_tokens + f.output_tokens) AS tokens,
  ROUND(SUM(f.cost_usd), 2) AS cost_usd
FROM {{ ref('fct_usage_daily') }} AS f
JOIN {{ ref('dim_providers') }} AS p ON p.provider = f.provider
GROUP BY f.usage_date, p.provider
