/**
 * Names the product keeps for tables of its own in a tenant's dataset: the incremental state and
 * load records (`_convergence_*`), each destination's quarantine (`<table>__quarantine`) and a
 * BigQuery load's staging tables (`<table>__stage_*`). A view of that name would stand in for the
 * product's own table and be read as if it were it, so views may not take these names.
 */
export function systemTableUse(name: string): string | undefined {
  const lower = name.toLowerCase();
  if (lower.startsWith('_convergence')) return 'the product keeps names starting with "_convergence" for its own state';
  if (lower.endsWith('__quarantine')) return `it is the quarantine table of ${name.slice(0, -'__quarantine'.length)}`;
  if (lower.includes('__stage_')) return 'names holding "__stage_" are the staging tables of loads';
  return undefined;
}
