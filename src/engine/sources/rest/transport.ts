/**
 * The one place a REST source's HTTP requests leave the process. Redirects are not followed here
 * (the client follows them itself, so credentials never follow one to another origin).
 */
export function sourceFetch(
  url: URL,
  init: RequestInit & { redirect: 'manual' },
  privateHosts: readonly string[] | undefined,
): Promise<Response> {
  void privateHosts;
  return fetch(url, init);
}
