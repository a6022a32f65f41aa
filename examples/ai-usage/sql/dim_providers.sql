-- Dimension: one row per provider seen in the usage exports, with the span of its usage.
SELECT
  provider,
  COUNT(DISTINCT model) AS models,
  MIN(usage_date) AS first_seen,
  MAX(usage_date) AS last_seen
FROM {{ ref('raw_usage') }}
GROUP BY provider
