-- View for dashboards: tokens, requests and estimated cost per day and provider.
SELECT
  usage_date,
  provider,
  COUNT(DISTINCT user_email) AS people,
  SUM(requests) AS requests,
  SUM(input_tokens + output_tokens) AS tokens,
  ROUND(SUM(cost_usd), 2) AS cost_usd
FROM {{ ref('fct_ai_usage_daily') }}
GROUP BY usage_date, provider
