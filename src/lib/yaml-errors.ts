import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import type { Document, LineCounter } from 'yaml';
import type { z } from 'zod';
import { notFoundError, validationError, type ConvergenceError } from './errors.ts';
import { nestsDeeperThan } from './nesting.ts';

/** The largest config file read (convergence.yaml, pipelines, sources, schemas, SQL): far above any real one. */
export const MAX_CONFIG_BYTES = 1024 * 1024;
/** Alias expansions allowed per document: enough for real anchors, far too few for a "billion laughs". */
const MAX_ALIAS_COUNT = 100;

const tooLarge = (file: string, bytes: number) =>
  validationError(
    `${file}: the file has ${bytes.toLocaleString('en-US')} bytes, more than the ${MAX_CONFIG_BYTES / 1024 / 1024} MiB a config file may have`,
    {
      data: { file, bytes, limit: MAX_CONFIG_BYTES },
    },
  );

/**
 * The text of a config file, refused (exit 2, naming the file) when it is larger than
 * MAX_CONFIG_BYTES or not a regular file, before more than that is read: a huge file or a device
 * never reaches memory. Opened non-blocking so a FIFO cannot hang the read.
 */
export async function readConfigText(full: string, shown: string): Promise<string> {
  let handle;
  try {
    handle = await open(full, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw notFoundError(`${shown} does not exist`);
    throw err;
  }
  try {
    const info = await handle.stat();
    if (!info.isFile()) throw validationError(`${shown} is not a regular file`);
    if (info.size > MAX_CONFIG_BYTES) throw tooLarge(shown, info.size);
    // The file may grow after the stat: never read past the cap.
    const buffer = Buffer.alloc(MAX_CONFIG_BYTES + 1);
    let length = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
      if (length > MAX_CONFIG_BYTES) throw tooLarge(shown, length);
    }
    return buffer.toString('utf8', 0, length);
  } finally {
    await handle.close();
  }
}

/** Where a key of a parsed file is, for messages about a valid file's values (e.g. a refused `path:`). */
export type Locate = (path: Array<string | number>) => { line: number; col: number };

/**
 * Parses YAML and validates it with a zod schema, turning every failure into one error that
 * names the file, line, column and key — the message a user needs to fix the file at once.
 * `yaml` is imported lazily by the caller's module graph only when a file is actually read.
 */
export async function parseYamlWith<T>(file: string, text: string, schema: z.ZodType<T>): Promise<T> {
  return (await parseYamlLocated(file, text, schema)).value;
}

/** parseYamlWith, also giving the position of any key of the document. */
export async function parseYamlLocated<T>(file: string, text: string, schema: z.ZodType<T>): Promise<{ value: T; locate: Locate }> {
  const { parseDocument, LineCounter } = await import('yaml');
  const bytes = Buffer.byteLength(text);
  if (bytes > MAX_CONFIG_BYTES) throw tooLarge(file, bytes);
  const lineCounter = new LineCounter();
  let doc: YamlDoc;
  let value: unknown;
  try {
    doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
    if (doc.errors.length > 0) {
      const first = doc.errors[0]!;
      const pos = lineCounter.linePos(first.pos[0]);
      const message = isStackOverflow(first.message) ? NESTING : (first.message.split('\n')[0] ?? 'invalid YAML');
      throw yamlError(file, pos.line, pos.col, undefined, message);
    }
    value = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT }) as unknown;
  } catch (err) {
    throw resourceError(file, err);
  }
  if (nestsDeeperThan(value, MAX_DEPTH)) throw validationError(`${file}: ${NESTING}`, { data: { file, limit: MAX_DEPTH } });
  const parsed = schema.safeParse(value ?? {});
  if (parsed.success) return { value: parsed.data, locate: (path) => locate(doc, lineCounter, path) };
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

/** Levels of mappings and sequences a config may nest: real ones use a handful. */
const MAX_DEPTH = 64;
const NESTING = `the document nests too deeply (more than ${MAX_DEPTH} levels)`;

const isStackOverflow = (message: string) => message.includes('Maximum call stack size exceeded');

/**
 * What a hostile document makes the parser throw, as a validation error naming the file: too many
 * alias expansions (`yaml` throws a ReferenceError) or nesting deeper than the stack allows.
 */
function resourceError(file: string, err: unknown): unknown {
  if (!(err instanceof Error) || err.name === 'ConvergenceError') return err;
  if (err instanceof ReferenceError && /alias/i.test(err.message)) {
    return validationError(`${file}: the document expands more than ${MAX_ALIAS_COUNT} aliases (*name): simplify its anchors and aliases`, {
      data: { file, limit: MAX_ALIAS_COUNT },
    });
  }
  if (err instanceof RangeError && isStackOverflow(err.message)) return validationError(`${file}: ${NESTING}`, { data: { file } });
  return err;
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
