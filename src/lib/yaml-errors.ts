import type { Document, LineCounter } from 'yaml';
import type { z } from 'zod';
import { validationError, type ConvergenceError } from './errors.ts';

/**
 * Parses YAML and validates it with a zod schema, turning every failure into one error that
 * names the file, line, column and key — the message a user needs to fix the file at once.
 * `yaml` is imported lazily by the caller's module graph only when a file is actually read.
 */
export async function parseYamlWith<T>(file: string, text: string, schema: z.ZodType<T>): Promise<T> {
  const { parseDocument, LineCounter } = await import('yaml');
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const first = doc.errors[0]!;
    const pos = lineCounter.linePos(first.pos[0]);
    throw yamlError(file, pos.line, pos.col, undefined, first.message.split('\n')[0] ?? 'invalid YAML');
  }
  const value = doc.toJS({ maxAliasCount: 100 }) as unknown;
  const parsed = schema.safeParse(value ?? {});
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues;
  const lines = issues.slice(0, 5).map((issue) => {
    const path = issue.path.map(String);
    const { line, col } = locateIssue(doc, lineCounter, issue);
    return `${file}:${line}:${col}: ${path.length ? path.join('.') : '(top level)'}: ${describeIssue(issue)}`;
  });
  const more = issues.length > 5 ? `\n(and ${issues.length - 5} more)` : '';
  const head = issues[0]!;
  const at = locateIssue(doc, lineCounter, head);
  const err = validationError(`${lines.join('\n')}${more}`, {
    data: {
      file,
      line: at.line,
      column: at.col,
      key: head.path.map(String).join('.'),
      issues: issues.map((i) => ({ key: i.path.map(String).join('.'), message: describeIssue(i) })),
    },
  });
  return Promise.reject(err);
}

function yamlError(file: string, line: number, col: number, key: string | undefined, message: string): ConvergenceError {
  return validationError(`${file}:${line}:${col}: ${key ? `${key}: ` : ''}${message}`, {
    data: { file, line, column: col, key },
  });
}

type YamlDoc = Document.Parsed;

/** Position of the deepest node of `path` that exists (the key itself when the value is missing). */
function locate(doc: YamlDoc, counter: LineCounter, path: Array<string | number>) {
  for (let depth = path.length; depth >= 0; depth--) {
    const node = doc.getIn(path.slice(0, depth), true) as { range?: [number, number, number] } | undefined;
    if (node && node.range) return counter.linePos(node.range[0]);
    if (depth === 0 && doc.contents && (doc.contents as { range?: number[] }).range) {
      return counter.linePos((doc.contents as { range: number[] }).range[0]!);
    }
  }
  return { line: 1, col: 1 };
}

/** Unknown keys are located at the first unknown key itself, not at the mapping that holds it. */
function locateIssue(doc: YamlDoc, counter: Parameters<typeof locate>[1], issue: z.core.$ZodIssue) {
  const path = issue.path as Array<string | number>;
  if (issue.code === 'unrecognized_keys' && issue.keys.length > 0) {
    const map = (path.length ? doc.getIn(path, true) : doc.contents) as
      { items?: Array<{ key?: { value?: unknown; range?: number[] } }> } | null | undefined;
    const key = map?.items?.find((pair) => String(pair.key?.value) === issue.keys[0])?.key;
    if (key?.range) return counter.linePos(key.range[0]!);
  }
  return locate(doc, counter, path);
}

function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys') return `unknown key(s) ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}`;
  return issue.message;
}
