/** Notes for the run's summary, grouped so a glob over 500 files gives one line per problem, not 500. */
export class Warnings {
  private readonly notes: string[] = [];
  private readonly dropped = new Map<string, string[]>();
  private readonly absent = new Map<string, string[]>();

  add(note: string): void {
    if (!this.notes.includes(note)) this.notes.push(note);
  }

  renamed(renames: string[]): void {
    if (renames.length > 0) this.add(`columns renamed to valid column names: ${renames.join(', ')}`);
  }

  unused(columns: string[], file: string): void {
    for (const c of columns) this.dropped.set(c, [...(this.dropped.get(c) ?? []), file]);
  }

  missing(columns: string[], file: string): void {
    for (const c of columns) this.absent.set(c, [...(this.absent.get(c) ?? []), file]);
  }

  list(): string[] {
    const where = (files: string[]) =>
      files.length <= 3 ? files.join(', ') : `${files.slice(0, 3).join(', ')} and ${files.length - 3} more`;
    const out = [...this.notes];
    for (const [column, files] of this.dropped) out.push(`column "${column}" is not in the schema and was not loaded (${where(files)})`);
    for (const [column, files] of this.absent) out.push(`schema column ${column} is missing from ${where(files)}: staged as null`);
    return out;
  }
}
