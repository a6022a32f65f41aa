import type { ServiceState, TrafficChange, TrafficTarget } from '../../backends/run-platform/port.ts';
import { servingSplit } from '../../backends/run-platform/serving-split.ts';
import { conflictError } from '../../lib/errors.ts';

/** The traffic list at `weight`% on the new revision: the saved targets scaled into the rest, tagged ones kept at 0%. */
export function weightedTraffic(saved: TrafficTarget[], revision: string, weight: number, tag: string | undefined): TrafficTarget[] {
  const rest = 100 - weight;
  const serving = saved.filter((t) => t.percent > 0);
  const total = serving.reduce((sum, t) => sum + t.percent, 0) || 1;
  const exact = serving.map((t) => (t.percent * rest) / total);
  const shares = exact.map(Math.floor);
  let left = rest - shares.reduce((a, b) => a + b, 0);
  const order = exact.map((v, i) => ({ i, frac: v - Math.floor(v) })).sort((a, b) => b.frac - a.frac);
  for (const { i } of order) {
    if (left <= 0) break;
    shares[i]! += 1;
    left -= 1;
  }
  const old = saved
    .map((t) => {
      const index = serving.indexOf(t);
      return { ...t, percent: index >= 0 ? shares[index]! : 0 };
    })
    .filter((t) => t.percent > 0 || t.tag);
  return [...old, { revision, percent: weight, ...(tag && weight < 100 ? { tag } : {}) }];
}

/** The split Run serves: its resolved statuses (LATEST named) when it reports them. */
const splitOf = (service: ServiceState) => servingSplit(service.trafficStatuses.length > 0 ? service.trafficStatuses : service.traffic);

/**
 * A traffic change that sets `wanted` only while the service still serves one of the `owned`
 * splits, those this deploy set itself: while a canary runs it owns the traffic. A split anyone else set meanwhile — a rollback, another deploy — is a
 * conflict (exit 2) and stays as it is: a canary step or an abort never overwrites it.
 */
export function ownedTrafficChange(service: string, owned: TrafficTarget[][], wanted: TrafficTarget[]): TrafficChange {
  const ours = new Set(owned.map(servingSplit));
  return (current) => {
    const found = splitOf(current);
    if (ours.has(found)) return wanted;
    throw conflictError(`the traffic of ${service} was changed by someone else during this deploy (it serves ${found})`, {
      suggestion: 'see `convergence rollback --list` for what happened; deploy again once the service is settled',
      data: { serving: found },
    });
  };
}
