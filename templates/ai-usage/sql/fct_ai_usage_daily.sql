-- Daily AI usage per provider, model and person: Anthropic tokens (per API key, its holder from the
-- team directory) with their cost estimated at list prices, and Cursor requests per person.
WITH prices AS (
  -- USD per million tokens; cache writes (5 min, 1 h) and reads as priced against input.
  SELECT 'claude-opus-4-5' AS model_prefix, 5.0 AS input_usd, 25.0 AS output_usd, 6.25 AS cache_5m_usd, 10.0 AS cache_1h_usd, 0.5 AS cache_read_usd
  UNION ALL SELECT 'claude-opus-4-1', 15.0, 75.0, 18.75, 30.0, 1.5
  UNION ALL SELECT 'claude-opus-4-2', 15.0, 75.0, 18.75, 30.0, 1.5
  UNION ALL SELECT 'claude-sonnet-4', 3.0, 15.0, 3.75, 6.0, 0.3
  UNION ALL SELECT 'claude-3-7-sonnet', 3.0, 15.0, 3.75, 6.0, 0.3
  UNION ALL SELECT 'claude-haiku-4-5', 1.0, 5.0, 1.25, 2.0, 0.1
  UNION ALL SELECT 'claude-3-5-haiku', 0.8, 4.0, 1.0, 1.6, 0.08
),
anthropic AS (
  SELECT
    CAST(u.bucket_start AS DATE) AS usage_date,
    u.model,
    u.api_key_id,
    u.uncached_input_tokens AS input_tokens,
    u.output_tokens,
    CAST(JSON_VALUE(u.cache_creation, '$.ephemeral_5m_input_tokens') AS INT64) AS cache_5m_tokens,
    CAST(JSON_VALUE(u.cache_creation, '$.ephemeral_1h_input_tokens') AS INT64) AS cache_1h_tokens,
    u.cache_read_input_tokens AS cache_read_tokens
  FROM {{ ref('raw_anthropic_usage') }} AS u
  WHERE u.bucket_start < CAST({{ run_date }} AS TIMESTAMP)
)
SELECT
  a.usage_date,
  'anthropic' AS provider,
  a.model,
  m.user_email,
  m.team,
  a.api_key_id,
  CAST(NULL AS INT64) AS requests,
  SUM(a.input_tokens) AS input_tokens,
  SUM(a.output_tokens) AS output_tokens,
  SUM(a.cache_5m_tokens + a.cache_1h_tokens) AS cache_write_tokens,
  SUM(a.cache_read_tokens) AS cache_read_tokens,
  CAST(NULL AS INT64) AS lines_accepted,
  ROUND(
    SUM(
      a.input_tokens * p.input_usd + a.output_tokens * p.output_usd + a.cache_5m_tokens * p.cache_5m_usd
        + a.cache_1h_tokens * p.cache_1h_usd + a.cache_read_tokens * p.cache_read_usd
    ) / 1000000,
    4
  ) AS cost_usd
FROM anthropic AS a
LEFT JOIN prices AS p ON STARTS_WITH(a.model, p.model_prefix)
LEFT JOIN {{ ref('dim_team_members') }} AS m ON m.anthropic_api_key_id = a.api_key_id
GROUP BY a.usage_date, a.model, m.user_email, m.team, a.api_key_id
UNION ALL
SELECT
  CAST(DATE_ADD(DATE '1970-01-01', INTERVAL (CAST(FLOOR(c.date / 86400000) AS INT64)) DAY) AS DATE) AS usage_date,
  'cursor' AS provider,
  c.mostUsedModel AS model,
  LOWER(c.email) AS user_email,
  m.team,
  CAST(NULL AS STRING) AS api_key_id,
  c.composerRequests + c.chatRequests + c.agentRequests + c.cmdkUsages AS requests,
  CAST(NULL AS INT64) AS input_tokens,
  CAST(NULL AS INT64) AS output_tokens,
  CAST(NULL AS INT64) AS cache_write_tokens,
  CAST(NULL AS INT64) AS cache_read_tokens,
  c.acceptedLinesAdded AS lines_accepted,
  NULL AS cost_usd
FROM {{ ref('raw_cursor_usage') }} AS c
LEFT JOIN {{ ref('dim_team_members') }} AS m ON m.user_email = LOWER(c.email)
WHERE c.isActive
