import { validationError } from '../lib/errors.ts';

/** Tenant ids double as dataset names, so they are checked before any SQL or path is built. */
export const TENANT_ID_PATTERN = /^[a-z][a-z0-9_]{2,49}$/;
/** Names of pipelines, sources, steps, tables and secrets: safe as identifiers and file names. */
export const NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_-]{0,127}$/;
export const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Datasets the system owns; a tenant may not take their names. */
const RESERVED_DATASETS = new Set(['tenants', 'information_schema', 'main', 'temp', 'system', 'pg_catalog']);

const show = (value: string) => JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);

export function assertTenantId(value: string): string {
  if (!TENANT_ID_PATTERN.test(value)) {
    throw validationError(`invalid tenant id ${show(value)}`, {
      suggestion: 'a tenant id is 3-50 characters: a lowercase letter first, then lowercase letters, digits or "_" (e.g. acme_corp)',
      data: { pattern: TENANT_ID_PATTERN.source },
    });
  }
  if (RESERVED_DATASETS.has(value)) {
    throw validationError(`tenant id ${show(value)} is reserved`, { suggestion: 'choose another tenant id' });
  }
  return value;
}

export function assertName(kind: string, value: string): string {
  if (!NAME_PATTERN.test(value)) {
    throw validationError(`invalid ${kind} ${show(value)}`, {
      suggestion: `a ${kind} starts with a letter or "_" and contains only letters, digits, "_" or "-" (at most 128)`,
    });
  }
  return value;
}

/** Dataset and table identifiers: a stricter subset that is valid unquoted in BigQuery and DuckDB. */
export const IDENTIFIER_PATTERN = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
export function assertIdentifier(kind: string, value: string): string {
  if (!IDENTIFIER_PATTERN.test(value)) {
    throw validationError(`invalid ${kind} ${show(value)}`, {
      suggestion: `a ${kind} contains only letters, digits and "_" and does not start with a digit`,
    });
  }
  return value;
}
