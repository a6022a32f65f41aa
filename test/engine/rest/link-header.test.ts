import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { findLink, parseLinkHeader } from '../../../src/engine/sources/rest/link-header.ts';

describe('parseLinkHeader', () => {
  it('parses several links with their params', () => {
    const links = parseLinkHeader('<https://a.example/p?page=2>; rel="next", <https://a.example/p?page=5>; rel="last"; title="Last page"');
    assert.deepEqual(links, [
      { uri: 'https://a.example/p?page=2', rel: ['next'], params: { rel: 'next' } },
      { uri: 'https://a.example/p?page=5', rel: ['last'], params: { rel: 'last', title: 'Last page' } },
    ]);
  });

  it('splits a quoted rel with several values and lower-cases them', () => {
    const [link] = parseLinkHeader('</x>; rel="prev NEXT\tstart"');
    assert.deepEqual(link?.rel, ['prev', 'next', 'start']);
  });

  it('accepts unquoted rel, extra whitespace, and commas/semicolons inside quoted values and URIs', () => {
    const links = parseLinkHeader(' </a?x=1,2> ;  title="a, b; c" ; rel=next ,</b>;rel="last"');
    assert.equal(links.length, 2);
    assert.equal(links[0]?.uri, '/a?x=1,2');
    assert.equal(links[0]?.params.title, 'a, b; c');
    assert.deepEqual(links[0]?.rel, ['next']);
    assert.deepEqual(links[1]?.rel, ['last']);
  });

  it('handles escaped quotes, ignores later duplicate rel, and skips garbage', () => {
    const links = parseLinkHeader('garbage, </a>; title="say \\"hi\\""; rel="first"; rel="next", </b>; rel=next');
    assert.equal(links.length, 2);
    assert.equal(links[0]?.params.title, 'say "hi"');
    assert.deepEqual(links[0]?.rel, ['first']);
    assert.equal(links[1]?.uri, '/b');
  });

  it('returns [] for empty or missing headers', () => {
    assert.deepEqual(parseLinkHeader(''), []);
    assert.deepEqual(parseLinkHeader(null), []);
    assert.deepEqual(parseLinkHeader(undefined), []);
  });
});

describe('findLink', () => {
  const base = 'https://api.example.com/v1/items?page=1';

  it('resolves a relative next link against the request URL', () => {
    assert.equal(findLink('<items?page=2>; rel="next"', base)?.href, 'https://api.example.com/v1/items?page=2');
    assert.equal(findLink('</v2/items?page=2>; rel="next"', base)?.href, 'https://api.example.com/v2/items?page=2');
    assert.equal(findLink('<?page=3>; rel="next"', base)?.href, 'https://api.example.com/v1/items?page=3');
  });

  it('finds next among several rel values and links', () => {
    const header = '<https://x.example/1>; rel="first", <https://x.example/3>; rel="last next"';
    assert.equal(findLink(header, base)?.href, 'https://x.example/3');
  });

  it('returns null without a next link', () => {
    assert.equal(findLink('<https://x.example/1>; rel="prev"', base), null);
    assert.equal(findLink('<https://x.example/1>; rel="nextpage"', base), null);
    assert.equal(findLink(null, base), null);
  });
});
