import type { Warehouse, WriteOp } from '../../../backends/warehouse/port.ts';
import { cursorWrites, readCursor, type StateKey } from '../../cursor.ts';
import type { SourceObject } from './gcs-objects.ts';

/**
 * Which objects of a gs:// source are loaded, by name and generation. Kept as a sibling row of the
 * step's cursor in `_convergence_state` (step_name `<step>#objects`, cursor_field `__objects`,
 * cursor_value a JSON object name → generation), so it is written by the same `alsoWrite` as the
 * rows and the cursor: a load that fails leaves the set as it was, and the next run loads the same
 * objects again. The set holds only objects the path still matches, so it does not grow without
 * bound as old exports are deleted.
 */
const OBJECTS_FIELD = '__objects';
type LoadedObjects = Record<string, string>;

const objectsKey = (key: StateKey): StateKey => ({ ...key, stepName: `${key.stepName}#objects` });
const objectId = (object: SourceObject) => `gs://${object.bucket}/${object.name}`;

export async function readLoadedObjects(warehouse: Warehouse, key: StateKey): Promise<LoadedObjects> {
  const text = await readCursor(warehouse, objectsKey(key));
  if (text === undefined) return {};
  try {
    const parsed: unknown = JSON.parse(text);
    return parsed && typeof parsed === 'object' ? (parsed as LoadedObjects) : {};
  } catch {
    // An unreadable set loads everything again: with merge that is idempotent, and it is never silent data loss.
    return {};
  }
}

/** The objects not loaded yet at their current generation: new ones and rewritten ones. */
export function objectsToLoad(matched: SourceObject[], loaded: LoadedObjects): SourceObject[] {
  return matched.filter((object) => loaded[objectId(object)] !== object.generation);
}

/** The objects of `toLoad` that an earlier run loaded at another generation: rewritten in place since. */
export function rewrittenObjects(toLoad: SourceObject[], loaded: LoadedObjects): SourceObject[] {
  return toLoad.filter((object) => loaded[objectId(object)] !== undefined);
}

/** The writes that record `loadedNow` (and keep what is still matched and was loaded before). */
export function loadedObjectWrites(
  key: StateKey,
  state: { matched: SourceObject[]; loaded: LoadedObjects; loadedNow: SourceObject[]; runId: string; at: Date },
): WriteOp[] {
  const next: LoadedObjects = {};
  for (const object of state.matched) {
    const id = objectId(object);
    if (state.loaded[id] !== undefined) next[id] = state.loaded[id];
  }
  for (const object of state.loadedNow) next[objectId(object)] = object.generation;
  return cursorWrites(objectsKey(key), { field: OBJECTS_FIELD, value: JSON.stringify(next), runId: state.runId, at: state.at });
}
