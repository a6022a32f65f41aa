import { validationError } from '../lib/errors.ts';

/**
 * `{{ }}` templating of tenant files. Three forms: a variable (`{{ run_date }}`, `{{ cursor }}`,
 * a `--param` name), `{{ ref('table') }}` and `{{ secret('name') }}`. In SQL a variable never
 * becomes text: it turns into a bound `@name` parameter (a quoted `'{{ x }}'` included), so a
 * parameter value cannot change the statement.
 */
const TAG = /('?)\{\{\s*(?:(ref|secret)\(\s*(['"])([^'"]*)\3\s*\)|([A-Za-z_][A-Za-z0-9_]*))\s*\}\}\1/g;

interface TemplateSite {
  /** File the text came from, for messages. */
  file: string;
}

function lineOf(text: string, index: number): number {
  return text.slice(0, index).split('\n').length;
}

function unknownVariable(site: TemplateSite, text: string, index: number, name: string, known: string[]): Error {
  return validationError(`${site.file}:${lineOf(text, index)}: unknown template variable {{ ${name} }}`, {
    suggestion: `available: ${known.length ? known.join(', ') : '(none)'}; pass others with --param ${name}=VALUE`,
  });
}

export interface SqlTemplateInput extends TemplateSite {
  variables: Record<string, string>;
  ref(table: string): string;
}

/** Renders a transform: refs become qualified tables, variables become `@name` parameters. */
export function renderSql(text: string, input: SqlTemplateInput): { sql: string; params: Record<string, string>; refs: string[] } {
  const params: Record<string, string> = {};
  const refs: string[] = [];
  const sql = text.replace(
    TAG,
    (match, quote: string, fn: string | undefined, _q, arg: string | undefined, name: string | undefined, index: number) => {
      if (fn === 'secret') throw validationError(`${input.file}:${lineOf(text, index)}: secrets cannot be used in SQL`);
      if (fn === 'ref') {
        refs.push(arg!);
        return `${quote}${input.ref(arg!)}${quote}`;
      }
      if (!Object.hasOwn(input.variables, name!)) throw unknownVariable(input, text, index, name!, Object.keys(input.variables));
      params[name!] = input.variables[name!]!;
      return `@${name}`;
    },
  );
  return { sql, params, refs };
}

export interface TextTemplateInput extends TemplateSite {
  variables: Record<string, string>;
  secret?(name: string): string;
}

/** Renders a value such as a URL parameter or header: plain substitution. */
export function renderText(text: string, input: TextTemplateInput): string {
  return text.replace(
    TAG,
    (match, quote: string, fn: string | undefined, _q, arg: string | undefined, name: string | undefined, index: number) => {
      if (fn === 'ref') throw validationError(`${input.file}:${lineOf(text, index)}: ref() only works in SQL`);
      if (fn === 'secret') {
        if (!input.secret) throw validationError(`${input.file}:${lineOf(text, index)}: secrets are not available here`);
        return `${quote}${input.secret(arg!)}${quote}`;
      }
      if (!Object.hasOwn(input.variables, name!)) throw unknownVariable(input, text, index, name!, Object.keys(input.variables));
      return `${quote}${input.variables[name!]}${quote}`;
    },
  );
}

/** Names used by a text: variables and secrets, for validation and dry runs. */
export function templateNames(text: string): { variables: string[]; secrets: string[]; refs: string[] } {
  const out = { variables: new Set<string>(), secrets: new Set<string>(), refs: new Set<string>() };
  for (const m of text.matchAll(TAG)) {
    if (m[2] === 'ref') out.refs.add(m[4]!);
    else if (m[2] === 'secret') out.secrets.add(m[4]!);
    else out.variables.add(m[5]!);
  }
  return { variables: [...out.variables], secrets: [...out.secrets], refs: [...out.refs] };
}
