-- Dimension: one row per person of the team directory sheet, with the Anthropic API key they use.
-- The sheet leaves trailing empty cells out, so a person without a key has a null key.
SELECT
  LOWER(TRIM(email)) AS user_email,
  name,
  team,
  NULLIF(TRIM(anthropic_api_key_id), '') AS anthropic_api_key_id
FROM {{ ref('raw_team_directory') }}
WHERE email IS NOT NULL AND TRIM(email) <> ''
