/**
 * The GCS fake answers the official client the way Cloud Storage does: routes, precondition rules,
 * status codes and error shapes. Adapter tests trust these, so they are pinned here.
 */
import '../env-guard.ts';
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { Storage } from '@google-cloud/storage';
import { PassThroughClient } from 'google-auth-library';
import { GcsFake, crc32cBase64 } from './server.ts';

const BUCKET = 'state';

const status = (code: number) => (err: unknown) => (err as { code?: unknown }).code === code;

describe('GCS fake', () => {
  let fake: GcsFake;
  let storage: Storage;

  beforeEach(async () => {
    fake = await GcsFake.start({ buckets: [BUCKET] });
    storage = new Storage({
      projectId: 'p',
      apiEndpoint: fake.endpoint,
      useAuthWithCustomEndpoint: true,
      authClient: new PassThroughClient(),
      retryOptions: { maxRetryDelay: 1 },
    });
  });
  afterEach(() => fake.close());

  const file = (name: string) => storage.bucket(BUCKET).file(name);
  const save = (name: string, data: string, preconditionOpts?: Record<string, number>) =>
    file(name).save(data, { resumable: false, ...(preconditionOpts ? { preconditionOpts } : {}) });
  const generationOf = (name: string) => fake.object(BUCKET, name)!.generation;
  const raw = (path: string, init?: RequestInit) => fetch(`${fake.endpoint}${path}`, init);

  it('enforces write preconditions like GCS and only ever raises generations', async () => {
    await save('a', 'one', { ifGenerationMatch: 0 });
    const first = generationOf('a');
    await assert.rejects(save('a', 'two', { ifGenerationMatch: 0 }), status(412), 'exists');
    await assert.rejects(save('a', 'two', { ifGenerationMatch: first + 1 }), status(412), 'other generation');
    await assert.rejects(save('missing', 'x', { ifGenerationMatch: first }), status(412), 'no live object');
    await assert.rejects(save('missing', 'x', { ifGenerationNotMatch: 0 }), status(412), 'NotMatch needs a live object');
    await assert.rejects(save('a', 'two', { ifGenerationNotMatch: first }), status(412));
    await assert.rejects(save('a', 'two', { ifMetagenerationMatch: 2 }), status(412));
    await save('a', 'two', { ifGenerationMatch: first });
    const second = generationOf('a');
    assert.ok(second > first);
    await save('a', 'three', { ifGenerationNotMatch: first });
    await file('a').delete({ ifGenerationMatch: generationOf('a') } as object);
    await save('a', 'four', { ifGenerationMatch: 0 });
    assert.ok(generationOf('a') > second, 'a recreated object gets a newer generation');
    assert.equal(fake.object(BUCKET, 'a')!.data.toString(), 'four');
  });

  it('answers 412 with the GCS error body', async () => {
    await save('a', 'one');
    const res = await raw(`/upload/storage/v1/b/${BUCKET}/o?uploadType=media&name=a&ifGenerationMatch=0`, { method: 'POST', body: 'x' });
    assert.equal(res.status, 412);
    const message = 'At least one of the pre-conditions you specified did not hold.';
    assert.deepEqual(await res.json(), {
      error: {
        code: 412,
        message,
        errors: [{ message, domain: 'global', reason: 'conditionNotMet', locationType: 'header', location: 'If-Match' }],
      },
    });
  });

  it('bumps the metageneration on a metadata patch, guarded by ifMetagenerationMatch', async () => {
    await save('a', 'one');
    await file('a').setMetadata({ metadata: { owner: 'x' } }, { ifMetagenerationMatch: 1 });
    const [meta] = await file('a').getMetadata();
    assert.equal(meta.metageneration, '2');
    assert.deepEqual(meta.metadata, { owner: 'x' });
    await assert.rejects(file('a').setMetadata({ metadata: { owner: 'y' } }, { ifMetagenerationMatch: 1 }), status(412));
    assert.equal(String(meta.generation), String(generationOf('a')), 'a metadata patch keeps the generation');
  });

  it('serves reads with generation headers, hashes the client validates, and read preconditions', async () => {
    await save('dir/a.json', '{"x":1}');
    const generation = generationOf('dir/a.json');
    for (const validation of ['crc32c', 'md5'] as const) {
      const [data] = await file('dir/a.json').download({ validation });
      assert.equal(data.toString(), '{"x":1}');
    }
    const res = await raw(`/storage/v1/b/${BUCKET}/o/${encodeURIComponent('dir/a.json')}?alt=media`);
    assert.equal(res.headers.get('x-goog-generation'), String(generation));
    assert.equal(res.headers.get('x-goog-metageneration'), '1');
    assert.match(res.headers.get('x-goog-hash') ?? '', new RegExp(`crc32c=${crc32cBase64(Buffer.from('{"x":1}'))}`));
    const path = `/storage/v1/b/${BUCKET}/o/${encodeURIComponent('dir/a.json')}`;
    assert.equal((await raw(`${path}?ifGenerationNotMatch=${generation}`)).status, 304);
    assert.equal((await raw(`${path}?ifGenerationMatch=${generation + 1}`)).status, 412);
    assert.equal((await raw(`${path}?generation=${generation - 1}`)).status, 404, 'no object versioning');
    const [meta] = await file('dir/a.json').getMetadata();
    assert.equal(meta.generation, String(generation));
    assert.equal(meta.size, '7');
  });

  it('answers 404 for a missing object and for a missing bucket with GCS messages', async () => {
    await assert.rejects(file('nope').getMetadata(), (err: Error & { code?: number }) => {
      assert.equal(err.code, 404);
      assert.equal(err.message, `No such object: ${BUCKET}/nope`);
      return true;
    });
    await assert.rejects(
      file('nope').download(),
      (err: Error & { code?: number }) => err.code === 404 && /No such object/.test(err.message),
    );
    await assert.rejects(storage.bucket('other').file('x').getMetadata(), (err: Error & { code?: number }) => {
      return err.code === 404 && err.message === 'The specified bucket does not exist.';
    });
    await assert.rejects(file('nope').delete(), status(404));
    assert.deepEqual(await storage.bucket(BUCKET).exists(), [true]);
    assert.deepEqual(await storage.bucket('other').exists(), [false]);
  });

  it('denies per bucket with 403 forbidden naming the permission', async () => {
    await save('a', 'one');
    fake.deny(BUCKET, { principal: 'sa@p.iam.gserviceaccount.com', permissions: ['storage.objects.delete'] });
    const [data] = await file('a').download();
    assert.equal(data.toString(), 'one');
    const res = await raw(`/storage/v1/b/${BUCKET}/o/a`, { method: 'DELETE' });
    assert.equal(res.status, 403);
    const body = (await res.json()) as { error: { code: number; message: string; errors: { reason: string }[] } };
    assert.equal(body.error.code, 403);
    assert.equal(body.error.errors[0]!.reason, 'forbidden');
    assert.match(body.error.message, /^sa@p\.iam\.gserviceaccount\.com does not have storage\.objects\.delete access/);
    await assert.rejects(save('a', 'two'), status(403), 'overwriting needs delete');
    await save('b', 'new');
  });

  it('lists with prefix, delimiter and pages', async () => {
    for (const name of ['locks/a.json', 'locks/b.json', 'locks/sub/c.json', 'other/d', 'locks/e.json']) await save(name, name);
    const names: string[] = [];
    let query: object | null = { prefix: 'locks/', maxResults: 2, autoPaginate: false };
    let pages = 0;
    while (query) {
      const [files, next] = (await storage.bucket(BUCKET).getFiles(query)) as unknown as [{ name: string }[], object | null];
      names.push(...files.map((f) => f.name));
      query = next;
      pages++;
    }
    assert.deepEqual(names, ['locks/a.json', 'locks/b.json', 'locks/e.json', 'locks/sub/c.json']);
    assert.equal(pages, 2);
    const res = await raw(`/storage/v1/b/${BUCKET}/o?prefix=locks/&delimiter=/`);
    const page = (await res.json()) as { items: { name: string; generation: string }[]; prefixes: string[] };
    assert.deepEqual(
      page.items.map((i) => i.name),
      ['locks/a.json', 'locks/b.json', 'locks/e.json'],
    );
    assert.deepEqual(page.prefixes, ['locks/sub/']);
    const empty = await (await raw(`/storage/v1/b/${BUCKET}/o?prefix=none/`)).json();
    assert.deepEqual(empty, { kind: 'storage#objects' });
  });

  it('takes resumable uploads in chunks, checking preconditions when the upload completes', async () => {
    const data = Buffer.alloc(600 * 1024, 7);
    data.write('head');
    await file('big').save(data, { resumable: true, chunkSize: 256 * 1024, preconditionOpts: { ifGenerationMatch: 0 } });
    assert.ok(fake.object(BUCKET, 'big')!.data.equals(data));
    assert.ok(
      fake.requests.some((r) => r.status === 308),
      'chunks before the last are acknowledged with 308',
    );
    await assert.rejects(file('big').save(data, { resumable: true, preconditionOpts: { ifGenerationMatch: 0 } }), status(412));
  });

  it('injects faults by method, path and count, before or after the request takes effect', async () => {
    fake.inject({ method: 'POST', path: /^\/upload\//, status: 503, times: 1 });
    await save('a', 'one', { ifGenerationMatch: 0 });
    assert.deepEqual(
      fake.requests.map((r) => [r.method, r.status, r.injected ?? false]),
      [
        ['POST', 503, true],
        ['POST', 200, false],
      ],
    );
    fake.inject({ method: 'POST', status: 500, afterApply: true });
    await assert.rejects(save('b', 'two'), status(500), 'an unconditional write is not retried');
    assert.equal(fake.object(BUCKET, 'b')!.data.toString(), 'two', 'the write landed before the fault');
  });
});
