/**
 * True when `value` nests arrays and objects more than `limit` levels deep (a scalar is 0 levels,
 * `[]` is 1). Walks with its own stack, so a hostile value cannot exhaust the call stack, and stops
 * at the first container past the limit.
 */
export function nestsDeeperThan(value: unknown, limit: number): boolean {
  const stack: Array<{ node: object; depth: number }> = [];
  if (typeof value === 'object' && value !== null) stack.push({ node: value, depth: 1 });
  for (let top = stack.pop(); top; top = stack.pop()) {
    if (top.depth > limit) return true;
    for (const child of Array.isArray(top.node) ? top.node : Object.values(top.node)) {
      if (typeof child === 'object' && child !== null) stack.push({ node: child as object, depth: top.depth + 1 });
    }
  }
  return false;
}
