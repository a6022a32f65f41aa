import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { assertIdentifier, assertName, assertTenantId, TENANT_ID_PATTERN } from '../../src/domain/ids.ts';
import { ConvergenceError, ExitCode } from '../../src/lib/errors.ts';

const valid = [
  'acme_corp',
  'abc',
  'a12',
  'a__',
  'globex',
  't_concurrent_1',
  `a${'b'.repeat(49)}`, // 50 characters, the maximum
];

const invalid: Array<[value: string, why: string]> = [
  ['', 'empty'],
  ['a', 'one character'],
  ['ab', 'two characters'],
  [`a${'b'.repeat(50)}`, '51 characters'],
  ['ACME', 'upper case'],
  ['Acme_corp', 'upper-case first letter'],
  ['1abc', 'starts with a digit'],
  ['_abc', 'starts with an underscore'],
  ['acme-corp', 'hyphen'],
  ['acme corp', 'space'],
  ['acme.corp', 'dot (dataset.table injection)'],
  ['acme; drop table x', 'SQL injection'],
  ["acme'--", 'quote and comment'],
  ['acme"x', 'double quote'],
  ['../etc', 'path traversal'],
  ['acme/x', 'slash'],
  ['acmé', 'non-ASCII letter'],
  ['acme\n', 'trailing newline'],
  [' acme', 'leading space'],
];

const reserved = ['tenants', 'information_schema', 'main', 'temp', 'system', 'pg_catalog'];

describe('tenant id rule ^[a-z][a-z0-9_]{2,49}$', () => {
  for (const id of valid) {
    it(`accepts ${JSON.stringify(id)} (${id.length} chars)`, () => {
      assert.equal(assertTenantId(id), id);
      assert.ok(TENANT_ID_PATTERN.test(id));
    });
  }

  for (const [id, why] of invalid) {
    it(`refuses ${JSON.stringify(id)}: ${why}`, () => {
      assert.throws(
        () => assertTenantId(id),
        (err: unknown) => {
          assert.ok(err instanceof ConvergenceError, 'a ConvergenceError');
          assert.equal(err.exitCode, ExitCode.usage);
          assert.equal(err.code, 'VALIDATION');
          assert.match(err.message, /^invalid tenant id /);
          assert.match(err.suggestion ?? '', /3-50 characters/);
          return true;
        },
      );
    });
  }

  for (const id of reserved) {
    it(`refuses the reserved dataset name ${id}`, () => {
      assert.throws(
        () => assertTenantId(id),
        (err: unknown) => err instanceof ConvergenceError && err.exitCode === ExitCode.usage && /reserved/.test(err.message),
      );
    });
  }

  it('shortens a very long id in the message', () => {
    const long = `a${'x'.repeat(200)}`;
    assert.throws(
      () => assertTenantId(long),
      (err: unknown) => err instanceof ConvergenceError && !err.message.includes(long) && err.message.includes('...'),
    );
  });
});

describe('names and identifiers', () => {
  it('accepts credential and pipeline names with letters, digits, _ and -', () => {
    for (const name of ['usage_api_token', 'p_usage_daily', 'sheets-sa', '_x', 'A1'])
      assert.equal(assertName('credential name', name), name);
  });

  it('refuses names that could escape a folder or a file name', () => {
    for (const name of ['', '../x', 'a/b', 'a.b', '-x', '1x', 'a b', 'x'.repeat(129)]) {
      assert.throws(() => assertName('credential name', name), /invalid credential name/);
    }
  });

  it('identifiers allow only letters, digits and _', () => {
    assert.equal(assertIdentifier('table', 'raw_usage'), 'raw_usage');
    for (const bad of ['raw-usage', 'a"b', 'x;y', '9t', '']) assert.throws(() => assertIdentifier('table', bad), /invalid table/);
  });
});
