import { readFile, rename, writeFile } from 'node:fs/promises';
import { cloudEnv } from '../../../backends/factory.ts';
import { CONFIG_FILE } from '../../../config/workspace.ts';
import { missingSettings } from '../names.ts';
import type { PlannedChange, SetupContext, SetupStep } from '../step.ts';

/** The settings setup names resources by that convergence.yaml leaves out (setup.env has them filled in). */
const unrecorded = (setup: SetupContext) => missingSettings(cloudEnv(setup.ctx.env) ?? setup.env, setup.names);

/** The settings setup names resources by, planned from the environment as convergence.yaml has it. */
function planConfig(setup: SetupContext): PlannedChange[] {
  return unrecorded(setup).map(({ key, value }) => ({
    action: 'update',
    resource: CONFIG_FILE,
    detail: `environments.${setup.env.name}.${key} = ${value}`,
  }));
}

/**
 * Writes the names into convergence.yaml through the yaml Document API, so the operator's comments
 * and key order stay, and into a temporary file renamed over it, so a failure never leaves half a
 * file. Only keys the environment lacks are added; a key set meanwhile is left as it is.
 */
async function recordNames(setup: SetupContext): Promise<void> {
  const file = setup.ctx.workspace.configFile;
  const { parseDocument } = await import('yaml');
  const doc = parseDocument(await readFile(file, 'utf8'));
  const path = ['environments', setup.env.name];
  for (const { key, value } of unrecorded(setup)) if (!doc.hasIn([...path, key])) doc.setIn([...path, key], value);
  const temporary = `${file}.setup-${process.pid}`;
  await writeFile(temporary, doc.toString(), { mode: 0o644 });
  await rename(temporary, file);
}

/** The names setup creates, recorded in convergence.yaml first, so every later command uses them. */
export const configStep: SetupStep = {
  id: 'config',
  title: 'Record the names in convergence.yaml',
  plan: async (setup) => planConfig(setup),
  apply: recordNames,
};
