/**
 * Which revisions serve what share of a service's traffic, as text: "rev-a 25%, rev-b 75%" (0%
 * targets, such as a canary's tag before its first step, left out; an unnamed target is LATEST).
 * Two lists serve the same split exactly when their texts are equal, whatever their order or tags.
 */
export function servingSplit(traffic: ReadonlyArray<{ revision?: string; percent: number }>): string {
  return traffic
    .filter((target) => target.percent > 0)
    .map((target) => `${target.revision ?? 'LATEST'} ${target.percent}%`)
    .sort()
    .join(', ');
}
