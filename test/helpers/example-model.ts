/**
 * The analytics model the demo's p_usage_daily builds after fct_usage_daily (seed 003's shape):
 * dimension tables, then views for dashboards. Tests that list the demo's steps append these.
 */
export const MODEL_STEPS = [
  'build_dim_providers',
  'build_dim_models',
  'build_dim_users',
  'view_daily_cost_by_provider',
  'view_top_users_by_cost',
  'view_model_mix',
  'view_cost_trend',
] as const;

/** The dimension tables those steps replace (rows that count as landed, unlike the views). */
export const MODEL_TABLES = ['dim_providers', 'dim_models', 'dim_users'] as const;

export const MODEL_VIEWS = ['v_daily_cost_by_provider', 'v_top_users_by_cost', 'v_model_mix', 'v_cost_trend'] as const;

/** The model's steps, each with `status`, as `name:STATUS`. */
export const modelSteps = (status: string) => MODEL_STEPS.map((name) => `${name}:${status}`);
