import { HeaderRows } from './header-rows.ts';
import { locateRecords, recordsOf, withParentColumns } from './records.ts';
import type { RestSourceConfig } from './types.ts';

export interface PageRecords {
  /** The entries of the response's records array(s), as the API counts them (what paginators count). */
  rows: unknown[];
  /** The records the source yields: rows_with_header rows turned into objects, parent columns added. */
  records: unknown[];
}

/**
 * Reads the records of each page of one fetch, as the config's records_path, records_format and
 * include_parent describe them. Stateful: a rows_with_header fetch takes its header from the
 * first page only (see header-rows.ts).
 */
export function pageRecordsReader(
  config: Pick<RestSourceConfig, 'records_path' | 'records_format' | 'include_parent'>,
): (body: unknown, url: string) => PageRecords {
  const headerRows = config.records_format === 'rows_with_header' ? new HeaderRows() : undefined;
  const includeParent = config.include_parent && Object.keys(config.include_parent).length > 0 ? config.include_parent : undefined;
  return (body, url) => {
    const groups = locateRecords(body, config.records_path, url, { missingIsEmpty: headerRows !== undefined });
    const shaped = headerRows ? headerRows.records(groups, url) : groups;
    const records = includeParent ? withParentColumns(shaped, includeParent, config.records_path ?? '', url) : recordsOf(shaped);
    return { rows: recordsOf(groups), records };
  };
}
