-- Dimension: one row per model and the provider that serves it.
SELECT
  model,
  provider,
  MIN(usage_date) AS first_seen,
  MAX(usage_date) AS last_seen
FROM {{ ref('raw_usage') }}
GROUP BY model, provider
