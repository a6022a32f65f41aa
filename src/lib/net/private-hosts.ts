/**
 * The operator's list of hosts a tenant's outbound request may reach on an internal address
 * (`rest_sources.private_hosts`): `host` allows every port of a host, `host:port` that one port.
 * Hosts compare as URLs spell them (lower case, IPv6 in brackets, IPv4 in dotted decimal).
 */

interface HostEntry {
  hostname: string;
  port?: string;
}

const ENTRY = /^(\[[0-9a-f:.]+\]|[^:/?#@[\]\s*]+)(?::(\d{1,5}))?$/i;

/** The canonical host and port of an entry, or undefined when it is not a `host` or `host:port`. */
export function parseHostEntry(entry: string): HostEntry | undefined {
  const match = ENTRY.exec(entry.trim());
  if (!match) return undefined;
  const [, host, port] = match;
  let hostname: string;
  try {
    hostname = new URL(`http://${host}/`).hostname;
  } catch {
    return undefined;
  }
  if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) return undefined;
  return port === undefined ? { hostname } : { hostname, port: String(Number(port)) };
}

const DEFAULT_PORTS: Record<string, string> = { 'http:': '80', 'https:': '443' };

/** Whether the operator listed the host of `url` (with any port, or with the port the URL connects to). */
export function isListedHost(url: URL, entries: readonly string[] | undefined): boolean {
  if (!entries?.length) return false;
  const port = url.port || DEFAULT_PORTS[url.protocol] || '';
  return entries.some((entry) => {
    const parsed = parseHostEntry(entry);
    return parsed !== undefined && parsed.hostname === url.hostname && (parsed.port === undefined || parsed.port === port);
  });
}
