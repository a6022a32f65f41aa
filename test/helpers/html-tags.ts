/**
 * The start tags of an HTML document as a browser's tokenizer would see them, for tests that look
 * for markup where only text should be: comments and end tags skipped, script/style/textarea
 * contents read as raw text up to their end tag, attribute values with character references decoded.
 */
export interface HtmlTag {
  name: string;
  attrs: Array<[string, string]>;
  /** The raw text of script, style and textarea elements. */
  text?: string;
}

// title is not raw text inside SVG, so it is read as markup here: stricter, never blinder.
const RAW_TEXT = new Set(['script', 'style', 'textarea']);
const NAMED: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", colon: ':', tab: '\t', newline: '\n' };

function decodeEntities(value: string): string {
  return value.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);?/gi, (whole, ref: string) => {
    if (ref[0] === '#')
      return String.fromCodePoint(ref[1] === 'x' || ref[1] === 'X' ? parseInt(ref.slice(2), 16) : parseInt(ref.slice(1), 10));
    return NAMED[ref.toLowerCase()] ?? whole;
  });
}

export function htmlTags(html: string): HtmlTag[] {
  const tags: HtmlTag[] = [];
  let i = 0;
  while ((i = html.indexOf('<', i)) >= 0) {
    if (html.startsWith('<!--', i)) {
      const end = html.indexOf('-->', i + 4);
      i = end < 0 ? html.length : end + 3;
    } else if (/^<[!?/]/.test(html.slice(i, i + 2))) {
      const end = html.indexOf('>', i);
      i = end < 0 ? html.length : end + 1;
    } else if (/^<[A-Za-z]/.test(html.slice(i, i + 2))) {
      i = readStartTag(html, i + 1, tags);
    } else {
      i += 1;
    }
  }
  return tags;
}

function readStartTag(html: string, from: number, tags: HtmlTag[]): number {
  let i = from;
  const name = /^[^\s/>]+/.exec(html.slice(i))![0].toLowerCase();
  i += name.length;
  const attrs: Array<[string, string]> = [];
  for (;;) {
    while (i < html.length && /[\s/]/.test(html[i]!)) i++;
    if (i >= html.length || html[i] === '>') break;
    const attrName = /^[^\s/>=]+/.exec(html.slice(i))?.[0] ?? html[i]!;
    i += attrName.length;
    while (/\s/.test(html[i] ?? '')) i++;
    let value = '';
    if (html[i] === '=') {
      i++;
      while (/\s/.test(html[i] ?? '')) i++;
      const quote = html[i];
      if (quote === '"' || quote === "'") {
        const end = html.indexOf(quote, i + 1);
        value = html.slice(i + 1, end < 0 ? html.length : end);
        i = end < 0 ? html.length : end + 1;
      } else {
        value = /^[^\s>]*/.exec(html.slice(i))![0];
        i += value.length;
      }
    }
    attrs.push([attrName.toLowerCase(), decodeEntities(value)]);
  }
  i += 1;
  const tag: HtmlTag = { name, attrs };
  if (RAW_TEXT.has(name)) {
    const end = html.toLowerCase().indexOf(`</${name}`, i);
    tag.text = html.slice(i, end < 0 ? html.length : end);
    i = end < 0 ? html.length : end;
  }
  tags.push(tag);
  return i;
}

/** The value of `name` on `tag`, or undefined. */
export const attr = (tag: HtmlTag, name: string) => tag.attrs.find(([key]) => key === name)?.[1];
