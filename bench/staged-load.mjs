// The product's load of staged Parquet, as the in-process contenders of the benchmarks run it:
// DuckDbWarehouse.load (one transaction, quarantine split) into bench.events of a fresh file.

/** Loads `staged` (a StagedData) into bench.events of the DuckDB file `database`; returns the LoadResult. */
export async function loadStaged(database, staged) {
  const { DuckDbWarehouse } = await import('../src/backends/warehouse/duckdb/index.ts');
  const warehouse = new DuckDbWarehouse({ file: database });
  try {
    await warehouse.createDataset('bench');
    return await warehouse.load({
      dataset: 'bench',
      table: 'events',
      source: { kind: 'parquet', files: staged.files, fields: staged.fields },
      writeMode: 'append',
      runId: 'bench',
    });
  } finally {
    await warehouse.close();
  }
}
