/** RFC 8288 Link header parsing. */

export interface Link {
  /** The target as written (unresolved). */
  uri: string;
  /** Relation types, lower-cased (the rel parameter may hold several, space-separated). */
  rel: string[];
  /** Target attributes, names lower-cased; first occurrence wins (RFC 8288 §3.3 for rel). */
  params: Record<string, string>;
}

function skipWs(s: string, i: number): number {
  while (i < s.length && (s[i] === ' ' || s[i] === '\t')) i++;
  return i;
}

/**
 * Parse a Link header field value into links. Handles several links, quoted values containing
 * `,` and `;`, backslash escapes in quoted strings, and `rel` with several relation types.
 * Malformed link-values are skipped rather than thrown.
 */
export function parseLinkHeader(header: string | null | undefined): Link[] {
  const links: Link[] = [];
  if (!header) return links;
  const s = header;
  let i = 0;
  while (i < s.length) {
    i = skipWs(s, i);
    if (s[i] === ',') {
      i++;
      continue;
    }
    if (s[i] !== '<') {
      // Not a link-value: skip to the next comma outside quotes.
      i = skipToComma(s, i);
      continue;
    }
    const close = s.indexOf('>', i + 1);
    if (close === -1) break;
    const uri = s.slice(i + 1, close).trim();
    i = close + 1;
    const params: Record<string, string> = {};
    for (;;) {
      i = skipWs(s, i);
      if (s[i] !== ';') break;
      i = skipWs(s, i + 1);
      let nameEnd = i;
      while (nameEnd < s.length && !'=;, \t'.includes(s[nameEnd] as string)) nameEnd++;
      const name = s.slice(i, nameEnd).toLowerCase();
      i = skipWs(s, nameEnd);
      let value = '';
      if (s[i] === '=') {
        i = skipWs(s, i + 1);
        if (s[i] === '"') {
          i++;
          while (i < s.length && s[i] !== '"') {
            if (s[i] === '\\' && i + 1 < s.length) i++;
            value += s[i];
            i++;
          }
          i++; // closing quote
        } else {
          let end = i;
          while (end < s.length && !';, \t'.includes(s[end] as string)) end++;
          value = s.slice(i, end);
          i = end;
        }
      }
      if (name !== '' && !Object.hasOwn(params, name)) params[name] = value;
    }
    i = skipToComma(s, i);
    const rel = (params.rel ?? '')
      .split(/[ \t]+/)
      .filter((r) => r !== '')
      .map((r) => r.toLowerCase());
    links.push({ uri, rel, params });
  }
  return links;
}

function skipToComma(s: string, i: number): number {
  let quoted = false;
  while (i < s.length) {
    const c = s[i];
    if (quoted) {
      if (c === '\\') i++;
      else if (c === '"') quoted = false;
    } else if (c === '"') quoted = true;
    else if (c === ',') return i + 1;
    i++;
  }
  return i;
}

/** The first link with relation type `rel` (default "next"), resolved against `base`; null when none. */
export function findLink(header: string | null | undefined, base: string | URL, rel = 'next'): URL | null {
  const wanted = rel.toLowerCase();
  for (const link of parseLinkHeader(header)) {
    if (!link.rel.includes(wanted)) continue;
    try {
      return new URL(link.uri, base);
    } catch {
      continue;
    }
  }
  return null;
}
