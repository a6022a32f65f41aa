-- Daily usage per provider, model and user; rebuilt from raw_usage on every run.
SELECT
  usage_date,
  provider,
  model,
  user_email,
  COUNT(*) AS requests,
  SUM(input_tokens) AS input_tokens,
  SUM(output_tokens) AS output_tokens,
  SUM(cost_usd) AS cost_usd
FROM {{ ref('raw_usage') }}
WHERE usage_date <= CAST({{ run_date }} AS DATE)
GROUP BY usage_date, provider, model, user_email
