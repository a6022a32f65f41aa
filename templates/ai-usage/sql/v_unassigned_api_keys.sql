-- View for the directory's keepers: Anthropic API keys with usage that no one in the sheet claims.
SELECT
  api_key_id,
  MIN(usage_date) AS first_seen,
  MAX(usage_date) AS last_seen,
  ROUND(SUM(cost_usd), 2) AS cost_usd
FROM {{ ref('fct_ai_usage_daily') }}
WHERE provider = 'anthropic' AND user_email IS NULL
GROUP BY api_key_id
