import type { SourceConfig } from '../../../domain/pipeline.ts';
import { templateNames } from '../../template.ts';

type RestSource = Extract<SourceConfig, { type: 'rest_api' }>;

/** The strings of a JSON value, depth first (a body's values are templated). */
function stringsOf(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.flatMap(stringsOf);
  if (value !== null && typeof value === 'object') return Object.values(value).flatMap(stringsOf);
  return [];
}

/** Where each secret of a REST source is named (`auth.client_secret`, `params`, ...), for validation messages. */
export function restSecretNames(source: RestSource): Array<{ key: string; name: string }> {
  const found: Array<{ key: string; name: string }> = [];
  const auth = source.auth;
  if (auth) {
    for (const key of ['secret', 'username_secret', 'client_secret', 'key_secret'] as const) {
      const name = (auth as Partial<Record<typeof key, string>>)[key];
      if (name) found.push({ key: `auth.${key}`, name });
    }
  }
  const templated: Array<[string, string[]]> = [
    ['url', [source.url]],
    ['params', Object.values(source.params ?? {}).flat()],
    ['headers', Object.values(source.headers ?? {})],
    ['body', stringsOf(source.body)],
  ];
  for (const [key, texts] of templated) {
    for (const text of texts) for (const name of templateNames(text).secrets) found.push({ key, name });
  }
  return found.filter((item, index) => found.findIndex((f) => f.name === item.name && f.key === item.key) === index);
}
