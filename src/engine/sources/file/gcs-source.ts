import path from 'node:path';
import type { Storage } from '@google-cloud/storage';
import type { Warehouse, WriteOp } from '../../../backends/warehouse/port.ts';
import type { StateKey } from '../../cursor.ts';
import type { StagedData } from '../../staging/staged-data.ts';
import { downloadSourceObjects, listSourceObjects, type SourceObject } from './gcs-objects.ts';
import { stageInputFiles, type StageFileOptions } from './index.ts';
import { loadedObjectWrites, objectsToLoad, readLoadedObjects, rewrittenObjects } from './object-state.ts';
import type { SourceConfig } from '../../../domain/pipeline.ts';
import type { FileScope } from './scope.ts';

type FileSource = Extract<SourceConfig, { type: 'file' }>;

/** What a gs:// source holds now against what earlier runs loaded. */
export interface ObjectPlan {
  matched: SourceObject[];
  /** The objects this run loads: all of them, or the new and rewritten ones when loading by object. */
  toLoad: SourceObject[];
  /** The objects of `toLoad` loaded before at an earlier generation (rewritten in place); empty when not loading by object. */
  rewritten: SourceObject[];
  /** The writes that record `toLoad` as loaded, for the load's `alsoWrite`; empty when not loading by object. */
  stateWrites: WriteOp[];
}

/**
 * Lists the objects a gs:// source matches and picks what to load. `byObject` (append and merge
 * writes, not a full refresh) skips objects already loaded at their current generation; a replace
 * reads every object, as it replaces the whole table.
 */
export async function planObjects(
  storage: Storage,
  source: FileSource,
  state: { scope: FileScope; warehouse: Warehouse; key: StateKey; byObject: boolean; runId: string; at: Date },
): Promise<ObjectPlan> {
  const matched = await listSourceObjects(storage, source.path, state.scope);
  if (!state.byObject) return { matched, toLoad: matched, rewritten: [], stateWrites: [] };
  const loaded = await readLoadedObjects(state.warehouse, state.key);
  const toLoad = objectsToLoad(matched, loaded);
  const rewritten = rewrittenObjects(toLoad, loaded);
  const stateWrites = loadedObjectWrites(state.key, { matched, loaded, loadedNow: toLoad, runId: state.runId, at: state.at });
  return { matched, toLoad, rewritten, stateWrites };
}

/**
 * The embedded engine's way in: the objects are downloaded into the run's staging folder and
 * staged exactly as local files are, so typing, quarantine reasons and warnings are the same.
 */
export async function stageObjects(
  storage: Storage,
  objects: SourceObject[],
  source: FileSource,
  options: Omit<StageFileOptions, 'scope'>,
): Promise<StagedData> {
  options.onProgress?.({ message: `downloading ${objects.length} object${objects.length === 1 ? '' : 's'}` });
  const files = await downloadSourceObjects(storage, objects, path.join(options.stagingDir, 'objects'));
  return stageInputFiles(files, source, options);
}
