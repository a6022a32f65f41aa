import { assertIdentifier } from '../../domain/ids.ts';
import { systemTableUse } from '../../domain/table-names.ts';
import { ConvergenceError, ExitCode } from '../../lib/errors.ts';
import { placeOf } from './tenant-sql.ts';
import type { ViewRequest } from './port.ts';

/** The checks every warehouse makes on a view request before it asks its parser anything. */
export function assertViewRequest(request: ViewRequest): void {
  assertIdentifier('dataset', request.dataset);
  assertIdentifier('view', request.view);
  const reserved = systemTableUse(request.view);
  if (reserved) {
    throw new ConvergenceError('VIEW_NAME_RESERVED', ExitCode.usage, `a view cannot be named ${request.view}: ${reserved}`, {
      suggestion: 'give the view another name',
      data: { dataset: request.dataset, view: request.view },
    });
  }
}

/** Template variables became query parameters; a view is read later, when no run binds them. */
export function viewParametersRefused(origin: string | undefined, names: string[]): ConvergenceError {
  return new ConvergenceError(
    'VIEW_PARAMETERS',
    ExitCode.usage,
    `${placeOf({ origin })}: a view cannot use template variables (${names.map((n) => `{{ ${n} }}`).join(', ')}): ` +
      'it is stored SQL, read later when no run binds them',
    {
      suggestion: 'compute the value in SQL (e.g. current_date) or write a table instead (write_mode replace)',
      data: { origin: origin ?? null, parameters: names },
    },
  );
}

/** A table holds the view's name: its rows would go, so the user must ask for it. */
export function viewReplacesTable(request: ViewRequest): ConvergenceError {
  return new ConvergenceError(
    'VIEW_REPLACES_TABLE',
    ExitCode.usage,
    `${request.dataset}.${request.view} is a table; making it a view would drop its rows`,
    {
      suggestion: `run the pipeline once with --full-refresh to replace the table by the view, or name the view differently`,
      data: { dataset: request.dataset, view: request.view },
    },
  );
}
