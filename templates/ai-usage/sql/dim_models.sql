-- Dimension: one row per model and the provider that serves it, with the span of its use.
SELECT
  provider,
  model,
  MIN(usage_date) AS first_seen,
  MAX(usage_date) AS last_seen
FROM {{ ref('fct_ai_usage_daily') }}
WHERE model IS NOT NULL
GROUP BY provider, model
