import path from 'node:path';
import type { SiteFiles } from './model.ts';

/**
 * What a browser may run on a site page: its own scripts and styles, nothing fetched or posted.
 * Every page carries it in a meta tag, so it holds from disk too.
 */
export const PAGE_CONTENT_SECURITY_POLICY =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'none'; base-uri 'none'; form-action 'none'";
/** The header a server sends with the pages: the page policy, and no framing (a meta tag cannot say that). */
export const SITE_CONTENT_SECURITY_POLICY = `${PAGE_CONTENT_SECURITY_POLICY}; frame-ancestors 'none'`;

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

export interface SiteFile {
  body: string | Buffer;
  contentType: string;
}

/**
 * The site file a request path (below the site's root, still URL-encoded) names: `''` and paths
 * ending in `/` mean their index.html. Only files of the site are answered; dot files (the site
 * marker) and anything that does not decode to a plain relative path are not.
 */
export function siteFile(files: SiteFiles, requestPath: string): SiteFile | undefined {
  let relative: string;
  try {
    relative = decodeURIComponent(requestPath.split('?')[0]!);
  } catch {
    return undefined;
  }
  if (relative === '' || relative.endsWith('/')) relative += 'index.html';
  if (relative.includes('\0') || relative.includes('\\')) return undefined;
  const parts = relative.split('/');
  if (parts.some((part) => part === '' || part.startsWith('.'))) return undefined;
  const body = files.get(relative);
  if (body === undefined) return undefined;
  return { body, contentType: CONTENT_TYPES[path.extname(relative)] ?? 'application/octet-stream' };
}
