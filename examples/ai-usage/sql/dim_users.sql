-- Dimension: one row per user, with the day of their first and last request.
SELECT
  user_email,
  MIN(usage_date) AS first_seen,
  MAX(usage_date) AS last_seen
FROM {{ ref('raw_usage') }}
WHERE user_email IS NOT NULL
GROUP BY user_email
