import type { DeployPlan } from './plan.ts';

/** Probes per analysis step: about ten, every 50 ms to 10 s. */
export const probePeriod = (intervalMs: number) => Math.min(10_000, Math.max(50, Math.floor(intervalMs / 10)));

/** Twice the tolerated p95 latency, within 1 to 10 s. */
export const probeTimeout = (plan: DeployPlan) => Math.min(10_000, Math.max(1000, plan.thresholds.maxLatencyP95Ms * 2));

/** The health gate of a new revision: two healthy answers within ten probes. */
export const gateOptions = (plan: DeployPlan) => ({
  attempts: 10,
  needed: 2,
  periodMs: probePeriod(plan.intervalMs),
  timeoutMs: probeTimeout(plan),
});
