import type { ProbeHeaders } from './probe-auth.ts';
import { probeOnce, sleep, type ProbeResult } from './probe.ts';

/**
 * Background analysis of the canary, after Argo Rollouts' AnalysisRun: while a step pauses, the
 * tagged revision is probed every `periodMs`. Each probe is a measurement over the window of
 * the latest samples of the step: it fails when the window's error rate exceeds maxErrorRate or
 * its p95 latency exceeds maxLatencyP95Ms. More than failureLimit failed measurements over the
 * whole rollout abort it.
 */
export interface AnalysisThresholds {
  maxErrorRate: number;
  maxLatencyP95Ms: number;
  failureLimit: number;
}

export interface StepAnalysis {
  probes: number;
  errors: number;
  errorRate: number;
  p95Ms: number;
  failedMeasurements: number;
  verdict: 'passed' | 'failed';
  reason: string | undefined;
  /** Wall time of the first unhealthy probe of the step (ms since epoch). */
  firstFailureAt: number | undefined;
}

const WINDOW = 10;

function p95(values: number[]): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(0.95 * sorted.length) - 1)]!;
}

export class CanaryAnalysis {
  readonly #thresholds: AnalysisThresholds;
  #failedMeasurements = 0;

  constructor(thresholds: AnalysisThresholds) {
    this.#thresholds = thresholds;
  }

  get failedMeasurements(): number {
    return this.#failedMeasurements;
  }

  /**
   * Probes `url` for `durationMs` (the step's pause), at least once; stops early once the
   * failure limit is exceeded.
   */
  async runStep(
    url: string,
    durationMs: number,
    periodMs: number,
    timeoutMs: number,
    onProbe?: (p: ProbeResult, s: StepAnalysis) => void,
    headers?: ProbeHeaders,
  ): Promise<StepAnalysis> {
    const samples: ProbeResult[] = [];
    const deadline = Date.now() + durationMs;
    let reason: string | undefined;
    let firstFailureAt: number | undefined;
    let stepFailures = 0;
    do {
      const result = await probeOnce(url, timeoutMs, headers);
      samples.push(result);
      if (!result.ok && firstFailureAt === undefined) firstFailureAt = result.at;
      const why = this.#breach(samples.slice(-WINDOW), result);
      if (why) {
        this.#failedMeasurements += 1;
        stepFailures += 1;
        reason = why;
      }
      onProbe?.(result, this.#summary(samples, reason, firstFailureAt, stepFailures));
      if (this.#failedMeasurements > this.#thresholds.failureLimit) break;
      const left = deadline - Date.now();
      if (left <= 0) break;
      await sleep(Math.min(periodMs, left));
    } while (Date.now() < deadline);
    return this.#summary(samples, reason, firstFailureAt, stepFailures);
  }

  /** Why the last WINDOW probes break a threshold (error rate first, then p95 latency); undefined when none. */
  #breach(window: ProbeResult[], latest: ProbeResult): string | undefined {
    const errors = window.filter((s) => !s.ok).length;
    const rate = errors / window.length;
    const latency = p95(window.map((s) => s.latencyMs));
    if (rate > this.#thresholds.maxErrorRate) {
      return `error rate ${(rate * 100).toFixed(0)}% > ${(this.#thresholds.maxErrorRate * 100).toFixed(0)}% (${latest.error ?? 'ok'})`;
    }
    if (latency > this.#thresholds.maxLatencyP95Ms) return `p95 latency ${latency.toFixed(0)}ms > ${this.#thresholds.maxLatencyP95Ms}ms`;
    return undefined;
  }

  #summary(samples: ProbeResult[], reason: string | undefined, firstFailureAt: number | undefined, stepFailures: number): StepAnalysis {
    const errors = samples.filter((s) => !s.ok).length;
    const failed = this.#failedMeasurements > this.#thresholds.failureLimit;
    return {
      probes: samples.length,
      errors,
      errorRate: samples.length ? errors / samples.length : 0,
      p95Ms: Math.round(p95(samples.map((s) => s.latencyMs))),
      failedMeasurements: stepFailures,
      verdict: failed ? 'failed' : 'passed',
      reason: failed ? `failure limit ${this.#thresholds.failureLimit} exceeded: ${reason}` : undefined,
      firstFailureAt,
    };
  }
}
