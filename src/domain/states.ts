export const TENANT_STATUSES = ['ACTIVE', 'SUSPENDED', 'DELETED'] as const;
export type TenantStatus = (typeof TENANT_STATUSES)[number];

export const RUN_STATES = ['PENDING', 'RUNNING', 'COMPLETE', 'FAILED', 'CANCELLED', 'TIMEOUT'] as const;
export type RunState = (typeof RUN_STATES)[number];
export const STEP_STATES = [...RUN_STATES, 'SKIPPED'] as const;
export type StepState = (typeof STEP_STATES)[number];
export const TERMINAL_RUN_STATES: ReadonlySet<RunState> = new Set(['COMPLETE', 'FAILED', 'CANCELLED', 'TIMEOUT']);
