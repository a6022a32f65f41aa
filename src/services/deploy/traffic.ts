import type { TrafficTarget } from '../../backends/run-platform/port.ts';

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
