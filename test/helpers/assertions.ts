import assert from 'node:assert/strict';
import { ConvergenceError } from '../../src/lib/errors.ts';

/** Awaits `promise`, asserts it rejects with a ConvergenceError of `exitCode`, and returns the error. */
export async function rejectsWith(promise: Promise<unknown>, exitCode: number, message?: RegExp): Promise<ConvergenceError> {
  let caught: unknown;
  try {
    await promise;
  } catch (err) {
    caught = err;
  }
  assert.ok(caught !== undefined, `expected a rejection with exit code ${exitCode}, but it resolved`);
  assert.ok(
    caught instanceof ConvergenceError,
    `expected a ConvergenceError, got ${caught instanceof Error ? caught.stack : String(caught)}`,
  );
  assert.equal(caught.exitCode, exitCode, `exit code of: ${caught.message}`);
  if (message) assert.match(caught.message, message);
  return caught;
}
