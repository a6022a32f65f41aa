import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isCalendarDate } from '../../src/domain/dates.ts';

describe('isCalendarDate', () => {
  it('accepts real days, leap days included', () => {
    for (const day of ['2025-01-31', '2024-02-29', '2000-02-29', '1999-12-31']) assert.equal(isCalendarDate(day), true, day);
  });
  it('refuses days a month does not have and anything not YYYY-MM-DD', () => {
    for (const day of [
      '2025-02-31',
      '2025-02-29',
      '1900-02-29',
      '2025-04-31',
      '2025-13-01',
      '2025-00-10',
      '2025-1-01',
      '2025-01-01x',
      ' 2025-01-01',
      '',
    ])
      assert.equal(isCalendarDate(day), false, day);
  });
});
