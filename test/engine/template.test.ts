import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { renderSql, renderText, templateNames } from '../../src/engine/template.ts';
import { ConvergenceError } from '../../src/lib/errors.ts';

const ref = (t: string) => `"acme"."${t}"`;

describe('renderSql', () => {
  it('turns refs into qualified tables and variables into bound parameters, quoted or not', () => {
    const out = renderSql("SELECT * FROM {{ ref('raw_usage') }} WHERE d = '{{ run_date }}' AND r = {{run_date}} AND x = {{ region }}", {
      file: 'q.sql',
      variables: { run_date: '2025-01-02', region: "eu'; DROP TABLE x; --" },
      ref,
    });
    assert.equal(out.sql, 'SELECT * FROM "acme"."raw_usage" WHERE d = @run_date AND r = @run_date AND x = @region');
    assert.deepEqual(out.params, { run_date: '2025-01-02', region: "eu'; DROP TABLE x; --" });
    assert.deepEqual(out.refs, ['raw_usage']);
  });

  it('names the file, line and the known variables for an unknown one', () => {
    assert.throws(
      () => renderSql('SELECT 1\nWHERE a = {{ regoin }}', { file: 'configs/t/sql/q.sql', variables: { region: 'eu' }, ref }),
      (err: unknown) =>
        err instanceof ConvergenceError &&
        err.exitCode === 2 &&
        /configs\/t\/sql\/q\.sql:2: unknown template variable \{\{ regoin \}\}/.test(err.message) &&
        /region/.test(err.suggestion ?? ''),
    );
  });

  it('refuses secrets in SQL', () => {
    assert.throws(() => renderSql("SELECT {{ secret('token') }}", { file: 'q.sql', variables: {}, ref }), /secrets cannot be used in SQL/);
  });
});

describe('renderText', () => {
  it('substitutes variables and secrets as text', () => {
    const out = renderText('{{ cursor }}|{{ secret("k") }}', {
      file: 's.yml',
      variables: { cursor: '2025-01-01' },
      secret: () => 's3cret',
    });
    assert.equal(out, '2025-01-01|s3cret');
  });

  it('refuses ref() outside SQL and unknown variables', () => {
    assert.throws(() => renderText("{{ ref('x') }}", { file: 's.yml', variables: {} }), /ref\(\) only works in SQL/);
    assert.throws(() => renderText('{{ nope }}', { file: 's.yml', variables: {} }), /unknown template variable/);
  });
});

it('templateNames lists variables, secrets and refs once each', () => {
  assert.deepEqual(templateNames("{{ a }} {{ a }} {{ secret('s') }} {{ ref('t') }}"), { variables: ['a'], secrets: ['s'], refs: ['t'] });
});
