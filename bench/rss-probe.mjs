// Preloaded with `node --import` into every engine-benchmark child (the CLI included, which we
// cannot edit): on exit it writes the process's peak RSS in KB to $BENCH_RSS_FILE. getrusage counts
// every thread, so memory used by the native polars and DuckDB threads is included.
import { writeFileSync } from 'node:fs';

process.on('exit', () => {
  if (process.env.BENCH_RSS_FILE) writeFileSync(process.env.BENCH_RSS_FILE, String(process.resourceUsage().maxRSS));
});
