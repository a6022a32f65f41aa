-- View for dashboards: total cost per day and its 7-day moving average.
WITH daily AS (
  SELECT usage_date, SUM(cost_usd) AS cost_usd
  FROM {{ ref('fct_usage_daily') }}
  GROUP BY usage_date
)
SELECT
  usage_date,
  ROUND(cost_usd, 2) AS cost_usd,
  ROUND(AVG(cost_usd) OVER (ORDER BY usage_date ROWS BETWEEN 6 PRECEDING AND CURRENT ROW), 2) AS cost_usd_7d_avg
FROM daily
