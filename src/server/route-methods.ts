/**
 * Which methods each route path takes, so a request for a known path with another method gets 405
 * and an Allow header instead of a 404 that suggests the path does not exist.
 */
export class RouteMethods {
  readonly #routes: Array<{ segments: string[]; methods: Set<string> }> = [];

  add(method: string | string[], url: string): void {
    const segments = split(url);
    let route = this.#routes.find((r) => r.segments.join('/') === segments.join('/'));
    if (!route) {
      route = { segments, methods: new Set() };
      this.#routes.push(route);
    }
    for (const m of Array.isArray(method) ? method : [method]) route.methods.add(m.toUpperCase());
  }

  /** The methods of every route whose pattern matches `path` (a `:name` segment matches any one segment); sorted. */
  allowed(path: string): string[] {
    const segments = split(path);
    const out = new Set<string>();
    for (const route of this.#routes) {
      if (route.segments.length !== segments.length) continue;
      if (route.segments.every((s, i) => (s.startsWith(':') ? segments[i] !== '' : s === segments[i]))) {
        for (const m of route.methods) out.add(m);
      }
    }
    return [...out].sort();
  }
}

const split = (path: string) => path.replace(/\/+$/, '').split('/');
