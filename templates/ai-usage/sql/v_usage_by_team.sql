-- View for dashboards: each team's use of each provider (usage no directory entry claims is "unassigned").
SELECT
  COALESCE(f.team, 'unassigned') AS team,
  f.provider,
  COUNT(DISTINCT f.user_email) AS people,
  SUM(f.requests) AS requests,
  SUM(f.input_tokens + f.output_tokens) AS tokens,
  ROUND(SUM(f.cost_usd), 2) AS cost_usd
FROM {{ ref('fct_ai_usage_daily') }} AS f
GROUP BY COALESCE(f.team, 'unassigned'), f.provider
