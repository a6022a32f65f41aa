/** The one collector of bound values every adapter and the engine use. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Params } from '../../src/backends/warehouse/params.ts';

describe('Params', () => {
  it('names values p0, p1, ... and returns @name placeholders by default', () => {
    const params = new Params();
    assert.equal(params.add('a'), '@p0');
    assert.equal(params.add(null), '@p1');
    assert.deepEqual(params.values, { p0: 'a', p1: null });
  });

  it('writes $name placeholders when asked (DuckDB)', () => {
    const params = new Params({ placeholder: '$' });
    assert.equal(params.add(1), '$p0');
    assert.deepEqual(params.values, { p0: 1 });
  });

  it('hands the name to values that carry it', () => {
    const params = new Params<{ name: string; value: string }>();
    params.add({ name: 'ignored', value: 'x' });
    assert.equal(
      params.addNamed((name) => ({ name, value: 'y' })),
      '@p1',
    );
    assert.deepEqual(params.values['p1'], { name: 'p1', value: 'y' });
  });

  it('refuses more values than its limit', () => {
    const params = new Params({ limit: { max: 2, error: () => new Error('too many') } });
    params.add(1);
    params.add(2);
    assert.throws(() => params.add(3), /too many/);
  });
});
