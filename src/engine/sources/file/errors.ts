import { ConvergenceError, ExitCode } from '../../../lib/errors.ts';

/** A source file polars could not read (broken quoting, truncated Parquet, ...): the run fails, naming the file. */
export function malformedFile(label: string, detail: string, suggestion?: string): ConvergenceError {
  return new ConvergenceError('SOURCE_MALFORMED', ExitCode.pipelineFailed, `${label}: ${detail}`, suggestion ? { suggestion } : {});
}

/** polars error text is long and multi-line; its first line says what went wrong. */
export function polarsMessage(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.split('\n')[0]!.trim();
}

export const quotingHint = (line: number | undefined) => (line ? `check the quoting near line ${line}` : undefined);
