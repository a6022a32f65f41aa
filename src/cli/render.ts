/** Plain-text table for terminal output; columns sized to their widest cell. */
export interface Column<R> {
  header: string;
  get: (row: R) => unknown;
}

export function formatTable<R>(rows: R[], columns: Column<R>[]): string {
  const cells = rows.map((row) => columns.map((c) => cellText(c.get(row))));
  const widths = columns.map((c, i) => Math.max(c.header.length, ...cells.map((r) => r[i]!.length)));
  const line = (values: string[]) =>
    values
      .map((v, i) => (i === values.length - 1 ? v : v.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(columns.map((c) => c.header.toUpperCase())), ...cells.map(line)].join('\n');
}

function cellText(value: unknown): string {
  if (value === null || value === undefined) return '-';
  if (value instanceof Date) return value.toISOString().replace(/\.\d{3}Z$/, 'Z');
  if (typeof value === 'boolean') return value ? 'yes' : 'no';
  return String(value);
}

/** key: value lines for a single record. */
export function formatRecord(entries: Array<[string, unknown]>): string {
  const width = Math.max(...entries.map(([k]) => k.length));
  return entries.map(([k, v]) => `${`${k}:`.padEnd(width + 1)} ${cellText(v)}`).join('\n');
}
