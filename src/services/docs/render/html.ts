/**
 * The only ways model text reaches the site's markup: escaped as HTML text or attribute value,
 * as a checked relative link, or as JSON inside a data block that no string can close.
 */

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Text or a double-quoted attribute value: safe in both places. */
export function esc(value: string | number | null | undefined): string {
  return String(value ?? '').replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]!);
}

/** A relative page path of the site: `index.html`, `tables/<name>.html` or `pipelines/<id>.html`. */
const SITE_PAGE = /^(?:index\.html|(?:tables|pipelines)\/[A-Za-z0-9_][A-Za-z0-9_.-]*\.html)$/;

/**
 * Checks a page path from the model before it becomes a link or a file name. Anything else (an
 * absolute URL, `javascript:`, `..`, a query or fragment) is refused: it would mean the model was
 * built wrong, and the site is not written.
 */
export function sitePage(href: string): string {
  if (!SITE_PAGE.test(href) || href.includes('..')) throw new Error(`refusing site link ${JSON.stringify(href)}: not a page of the site`);
  return href;
}

/** Where a page sits: the site root, or one folder down (`tables/`, `pipelines/`). */
export type PageDepth = 0 | 1;

/** `href` (relative to the site root) as seen from a page at `depth`, escaped for an attribute. */
export function hrefFrom(depth: PageDepth, href: string): string {
  return esc(`${depth ? '../' : ''}${sitePage(href)}`);
}

/** The site's own assets as seen from a page at `depth`. */
export const assetFrom = (depth: PageDepth, file: string) => `${depth ? '../' : ''}assets/${file}`;

/**
 * JSON for `<script type="application/json">`: `<` never appears literally, so neither
 * `</script>` nor `<!--` can end or bend the block, and U+2028/2029 are escaped too.
 */
export function jsonForScript(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

/** A CSS class fragment from engine words such as a run status (`COMPLETE` → `complete`). */
export const classWord = (word: string) => word.toLowerCase().replace(/[^a-z0-9-]+/g, '-');
