#!/usr/bin/env node
// The demo tenant's usage API on 127.0.0.1: GET /v1/usage?starting_at=YYYY-MM-DD&limit=N&page=CURSOR
// with a bearer token, cursor pagination ({data, next_page}) and a 429 now and then, like a real API.
// Usage: node scripts/demo-usage-api.mjs [port]   (prints "listening <port>" when ready)
import http from 'node:http';
import { dayAfter, usageRecords } from '../dist/services/example-data.js';
import { EXAMPLE_API_TOKEN } from '../dist/services/example.js';

const port = Number(process.argv[2] ?? process.env.DEMO_API_PORT ?? 8787);
const records = [];
for (let d = 0; d < 10; d++) records.push(...usageRecords(dayAfter('2025-01-01', d), 120, 'api'));
let served = 0;

const server = http.createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const send = (status, body, headers = {}) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
  };
  if (url.pathname !== '/v1/usage') return send(404, { error: 'not found' });
  if (req.headers.authorization !== `Bearer ${EXAMPLE_API_TOKEN}`) return send(401, { error: 'invalid token' });
  // Every seventh request is rate limited once, to show the client waiting out Retry-After.
  if (++served % 7 === 0) return send(429, { error: 'slow down' }, { 'retry-after': '1' });
  const from = url.searchParams.get('starting_at') || '0000-00-00';
  const limit = Math.min(Number(url.searchParams.get('limit') ?? 100), 500);
  const offset = Number(url.searchParams.get('page') ?? 0);
  const matching = records.filter((r) => r.usage_date >= from);
  const page = matching.slice(offset, offset + limit);
  const next = offset + limit < matching.length ? String(offset + limit) : null;
  send(200, { data: page, next_page: next });
});
server.listen(port, '127.0.0.1', () => console.log(`listening ${server.address().port}`));
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => server.close(() => process.exit(0)));
