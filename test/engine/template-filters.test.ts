/** Template filters: dates and RFC 3339 timestamps in the spelling an API wants; refused where they cannot apply. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { renderJson, renderSql, renderText, templateNames, unknownFilters } from '../../src/engine/template.ts';
import { ConvergenceError } from '../../src/lib/errors.ts';

const render = (text: string, variables: Record<string, string>) => renderText(text, { file: 'configs/t/sources/s.yml', variables });

/** Asserts a ConvergenceError of exit code 2 whose message matches. */
function refused(fn: () => unknown, message: RegExp) {
  assert.throws(fn, (err: unknown) => err instanceof ConvergenceError && err.exitCode === 2 && message.test(err.message));
}

describe('template filters', () => {
  it('epoch_ms and epoch_s of a date (00:00 UTC) and of timestamps with any offset', () => {
    assert.equal(render('{{ d | epoch_ms }}', { d: '2025-01-01' }), '1735689600000');
    assert.equal(render('{{d|epoch_s}}', { d: '2025-01-01' }), '1735689600');
    assert.equal(render('{{ t | epoch_ms }}', { t: '2025-01-01T01:00:00+01:00' }), '1735689600000');
    assert.equal(render('{{ t | epoch_ms }}', { t: '2025-01-01T00:00:00.250Z' }), '1735689600250');
    assert.equal(render('{{ t | epoch_s }}', { t: '2025-01-01T00:00:00.999Z' }), '1735689600');
  });

  it('rfc3339 writes UTC to the second, date the UTC day', () => {
    assert.equal(render('{{ d | rfc3339 }}', { d: '2025-03-01' }), '2025-03-01T00:00:00Z');
    assert.equal(render('{{ t | rfc3339 }}', { t: '2025-03-01T23:30:00-02:00' }), '2025-03-02T01:30:00Z');
    assert.equal(render('{{ t | date }}', { t: '2025-03-01T23:30:00-02:00' }), '2025-03-02');
    assert.equal(render('{{ d | date }}', { d: '2024-02-29' }), '2024-02-29');
    assert.equal(
      render('from={{ a | date }}&to={{ b | rfc3339 }}', { a: '2025-01-31', b: '2025-02-01' }),
      'from=2025-01-31&to=2025-02-01T00:00:00Z',
    );
  });

  it('refuses an unknown filter with the file, line and the filters there are', () => {
    assert.throws(
      () => render('a\n{{ run_date | epoch_millis }}', { run_date: '2025-01-01' }),
      (err: unknown) =>
        err instanceof ConvergenceError &&
        err.exitCode === 2 &&
        /configs\/t\/sources\/s\.yml:2: unknown template filter "epoch_millis"/.test(err.message) &&
        /epoch_ms, epoch_s, rfc3339, date/.test(err.suggestion ?? ''),
    );
  });

  it('refuses a value that is not a real date or RFC 3339 timestamp, for each filter', () => {
    for (const filter of ['epoch_ms', 'epoch_s', 'rfc3339', 'date']) {
      for (const value of [
        '',
        'yesterday',
        '2025-02-30',
        '2025-01-01T25:00:00Z',
        '2025-01-01T10:00:00',
        '1735689600000',
        '2025-01-01T10:00:00+24:00',
      ]) {
        refused(
          () => render(`{{ v | ${filter} }}`, { v: value }),
          /s\.yml:1: \{\{ v \| \w+ \}\}: ".*" is not a date \(YYYY-MM-DD\) or an RFC 3339 timestamp/,
        );
      }
    }
  });

  it('an empty cursor through a filter suggests setting incremental.initial', () => {
    assert.throws(
      () => render('{{ cursor | epoch_ms }}', { cursor: '' }),
      (err: unknown) => err instanceof ConvergenceError && /incremental\.initial/.test(err.suggestion ?? ''),
    );
  });

  it('filters apply to variables only: secret() and ref() through a filter are refused', () => {
    refused(
      () => renderText("{{ secret('k') | date }}", { file: 's.yml', variables: {}, secret: () => 'x' }),
      /filters apply to variables, not to secret\('k'\)/,
    );
    refused(() => render("{{ ref('t') | date }}", {}), /ref\(\) only works in SQL/);
  });

  it('SQL refuses filters, naming the line and how to convert in SQL', () => {
    assert.throws(
      () =>
        renderSql('SELECT 1\nWHERE d = {{ run_date | epoch_ms }}', {
          file: 'configs/t/sql/q.sql',
          variables: { run_date: '2025-01-01' },
          ref: (t) => t,
        }),
      (err: unknown) =>
        err instanceof ConvergenceError &&
        err.exitCode === 2 &&
        /configs\/t\/sql\/q\.sql:2: template filters such as \| epoch_ms are not available in SQL/.test(err.message) &&
        /@run_date/.test(err.suggestion ?? ''),
    );
  });

  it('templateNames reports variables used through filters; unknownFilters names only the unknown ones', () => {
    assert.deepEqual(templateNames('{{ window_start | epoch_ms }} {{ window_end|date }} {{ run_date }}').variables, [
      'window_start',
      'window_end',
      'run_date',
    ]);
    assert.deepEqual(unknownFilters('{{ a | date }} {{ b | millis }} "{{ c | upper }}"'), [
      { tag: '{{ b | millis }}', filter: 'millis' },
      { tag: '{{ c | upper }}', filter: 'upper' },
    ]);
  });
});

describe('renderJson (POST bodies)', () => {
  const variables = { window_start: '2025-01-01', window_end: '2025-01-31', team: 'eng' };
  const secret = (name: string) => (name === 'k' ? 'sk-1' : '');

  it('renders every string; a value that is only a numeric filter tag becomes a JSON number', () => {
    const body = renderJson(
      {
        startDate: '{{ window_start | epoch_ms }}',
        endDate: ' {{ window_end | epoch_s }} ',
        label: 'from {{ window_start | epoch_ms }}',
        day: '{{ window_start | date }}',
        nested: [{ team: '{{ team }}', key: "{{ secret('k') }}", n: 3, ok: true, none: null }],
      },
      { file: 's.yml', variables, secret },
    );
    assert.deepEqual(body, {
      startDate: 1735689600000,
      endDate: 1738281600,
      label: 'from 1735689600000',
      day: '2025-01-01',
      nested: [{ team: 'eng', key: 'sk-1', n: 3, ok: true, none: null }],
    });
  });

  it('keeps keys as written and refuses what renderText refuses', () => {
    assert.deepEqual(renderJson({ '{{ team }}': 'x' }, { file: 's.yml', variables }), { '{{ team }}': 'x' });
    refused(() => renderJson({ a: ['{{ nope | epoch_ms }}'] }, { file: 's.yml', variables }), /unknown template variable \{\{ nope \}\}/);
    refused(() => renderJson({ a: '{{ team | epoch_ms }}' }, { file: 's.yml', variables }), /"eng" is not a date/);
  });
});
