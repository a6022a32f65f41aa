/**
 * Whether the operator lists a URL's host in `rest_sources.private_hosts`: an entry is a host
 * name or address (any port) or `host:port` (that port only), compared lower-case. IPv6
 * addresses are written in brackets, as in a URL.
 */
export function isListedHost(url: URL, privateHosts: readonly string[]): boolean {
  const hostname = url.hostname.toLowerCase();
  const port = url.port || (url.protocol === 'https:' ? '443' : url.protocol === 'http:' ? '80' : '');
  return privateHosts.some((entry) => {
    const listed = entry.trim().toLowerCase();
    return listed === hostname || listed === `${hostname}:${port}`;
  });
}
