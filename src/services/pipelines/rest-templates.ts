import { pipelineSchema, sourceSchema, type PipelineConfig, type SourceConfig } from '../../domain/pipeline.ts';
import { parseInstant } from '../../engine/instants.ts';
import { replaceWithWindows, WINDOW_BOUND_VARIABLES, windowSize } from '../../engine/sources/rest/windows.ts';
import { FILTER_NAMES, templateNames, unknownFilters } from '../../engine/template.ts';
import { isConvergenceError } from '../../lib/errors.ts';
import { parseYamlLocated } from '../../lib/yaml-errors.ts';

type RestSource = Extract<SourceConfig, { type: 'rest_api' }>;
type KeyPath = Array<string | number>;

/** Every templated string of a request (url, params, headers, body), with its key in the file. */
function requestTexts(source: RestSource): Array<{ key: KeyPath; text: string }> {
  const out: Array<{ key: KeyPath; text: string }> = [{ key: ['url'], text: source.url }];
  for (const [name, value] of Object.entries(source.params ?? {})) {
    if (Array.isArray(value)) value.forEach((item, i) => out.push({ key: ['params', name, i], text: item }));
    else out.push({ key: ['params', name], text: value });
  }
  for (const [name, value] of Object.entries(source.headers ?? {})) out.push({ key: ['headers', name], text: value });
  const walk = (value: unknown, key: KeyPath) => {
    if (typeof value === 'string') out.push({ key, text: value });
    else if (Array.isArray(value)) value.forEach((item, i) => walk(item, [...key, i]));
    else if (value !== null && typeof value === 'object') for (const [k, v] of Object.entries(value)) walk(v, [...key, k]);
  };
  if (source.body !== undefined) walk(source.body, ['body']);
  return out;
}

const WINDOW_VARIABLES = ['window_start', 'window_end'];

/** The problems of one templated string of a REST source, without position. */
function textProblems(source: RestSource, key: KeyPath, text: string): string[] {
  const problems = unknownFilters(text).map(
    ({ tag, filter }) => `unknown template filter "${filter}" in ${tag} (filters: ${FILTER_NAMES.join(', ')})`,
  );
  const names = templateNames(text);
  if (key[0] === 'windows') {
    const others = names.variables.filter((name) => !(WINDOW_BOUND_VARIABLES as readonly string[]).includes(name));
    for (const name of others)
      problems.push(`unknown template variable {{ ${name} }}: window bounds can use ${WINDOW_BOUND_VARIABLES.join(' and ')}`);
    if (names.secrets.length > 0) problems.push('secrets cannot be used in window bounds');
    const literal = names.variables.length === 0 && names.secrets.length === 0 && !text.includes('{{');
    const keyword = key[1] === 'to' && (text === 'run_date' || text === 'now');
    if (literal && !keyword && !parseInstant(text.trim())) {
      problems.push(
        `${JSON.stringify(text)} is not a date (YYYY-MM-DD), an RFC 3339 timestamp or a template` +
          (key[1] === 'to' ? ', nor run_date or now' : ''),
      );
    }
  } else if (!source.windows) {
    for (const name of names.variables.filter((n) => WINDOW_VARIABLES.includes(n)))
      problems.push(`{{ ${name} }} is only set for a source with windows: (add windows: { size: 1d } or drop it)`);
  }
  return problems;
}

/**
 * For `pipeline validate`: what a REST source's templates would refuse at run time, at the line
 * of the key: unknown filters, window bounds that cannot render (a variable other than cursor and
 * run_date, a literal that is no date), a window size that is not whole seconds, and
 * {{ window_start }} / {{ window_end }} in a source without windows.
 */
export async function restTemplateProblems(sourceFile: string, source: SourceConfig, text: string): Promise<string[]> {
  if (source.type !== 'rest_api') return [];
  const texts = requestTexts(source);
  if (source.windows)
    texts.push({ key: ['windows', 'from'], text: source.windows.from }, { key: ['windows', 'to'], text: source.windows.to });
  const found = texts.flatMap(({ key, text }) => textProblems(source, key, text).map((problem) => ({ key, problem })));
  if (source.windows) {
    try {
      windowSize(source.windows.size, sourceFile);
    } catch (err) {
      if (!isConvergenceError(err)) throw err;
      found.push({
        key: ['windows', 'size'],
        problem: `${source.windows.size} is not a positive whole number of seconds (e.g. 1h, 1d, 30d)`,
      });
    }
  }
  if (found.length === 0) return [];
  const { locate } = await parseYamlLocated(sourceFile, text, sourceSchema);
  return found.map(({ key, problem }) => {
    const { line, col } = locate(key);
    return `${sourceFile}:${line}:${col}: ${key.join('.')}: ${problem}`;
  });
}

/**
 * For `pipeline validate`: ingest steps writing a source with windows in write_mode replace, at
 * the line of their write_mode (the run refuses them too).
 */
export async function pipelineWindowProblems(
  display: string,
  pipeline: PipelineConfig,
  source: (relative: string) => Promise<{ source: SourceConfig }>,
  text: () => Promise<string>,
): Promise<string[]> {
  const found: number[] = [];
  for (const [index, step] of pipeline.steps.entries()) {
    if (step.type !== 'ingest' || step.destination.write_mode !== 'replace') continue;
    const read = await source(step.source_config).catch(() => undefined);
    if (read?.source.type === 'rest_api' && read.source.windows) found.push(index);
  }
  if (found.length === 0) return [];
  const { locate } = await parseYamlLocated(display, await text(), pipelineSchema);
  return found.map((index) => {
    const { line, col } = locate(['steps', index, 'destination', 'write_mode']);
    return `${display}:${line}:${col}: steps.${index}.destination.write_mode: ${replaceWithWindows}`;
  });
}
