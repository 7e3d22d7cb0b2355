/**
 * S3BackupClient with the real AWS SDK against an S3 stand-in
 * (test/helpers/s3-standin.ts: no S3-compatible server is packaged for
 * Debian, so the stand-in implements the calls the client makes).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import { PosMismatchError } from '../../../src/backup/client.js';
import { planRestore, restoreDatabase } from '../../../src/backup/restore.js';
import { S3BackupClient, S3URLError, parseS3URL } from '../../../src/backup/s3.js';
import { S3Standin } from '../../helpers/s3-standin.js';
import { History, chunks } from './history.js';

const PAGE = 512;

function history(): History {
  const h = new History(PAGE);
  h.commit([1, 2, 3], 3);
  for (let i = 0; i < 9; i++) h.commit([1 + (i % 3)]);
  return h;
}

describe('S3 backup URL', () => {
  test('s3://BUCKET/PREFIX with endpoint, region and path style; the prefix always ends in /', () => {
    assert.deepEqual(parseS3URL('s3://bkt/some/prefix?endpoint=http://127.0.0.1:9000&region=auto&force-path-style=true'), {
      bucket: 'bkt',
      prefix: 'some/prefix/',
      endpoint: 'http://127.0.0.1:9000',
      region: 'auto',
      forcePathStyle: true,
    });
    assert.deepEqual(parseS3URL('s3://bkt'), { bucket: 'bkt', prefix: '', endpoint: undefined, region: undefined, forcePathStyle: false });
    assert.equal(parseS3URL('s3://bkt/p/').prefix, 'p/');
  });

  test('anything else is refused with what is wanted', () => {
    assert.throws(() => parseS3URL('https://bkt/p'), S3URLError);
    assert.throws(() => parseS3URL('s3:///p'), /want s3:\/\/BUCKET/);
    assert.throws(() => parseS3URL('s3://bkt/p?secret=x'), /unknown parameter "secret"/);
    assert.throws(() => parseS3URL('s3://bkt/p?force-path-style=yes'), /true or false/);
  });
});

describe('S3BackupClient', () => {
  let s3: S3Standin;
  let sdk: S3Client;
  const dirs: string[] = [];
  before(async () => {
    s3 = await S3Standin.start({ pageSize: 3 });
    sdk = new S3Client({
      region: 'us-east-1',
      endpoint: s3.endpoint,
      forcePathStyle: true,
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
  });
  after(async () => {
    sdk?.destroy();
    await s3?.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  const client = (prefix: string, spool?: string): S3BackupClient => new S3BackupClient(parseS3URL(`s3://bkt/${prefix}`), sdk, spool);

  test('an upload is verified while spooled to a file (not held in memory), sent from it, and the file goes, refused or not', async () => {
    const spool = mkdtempSync(join(tmpdir(), 'litefs-s3-spool-'));
    dirs.push(spool);
    const c = client('spool', spool);
    const h = history();
    assert.equal(await c.writeTx('a.db', chunks(h.file(1n, 3n), 100)), 3n);
    assert.deepEqual(readdirSync(spool), []);
    await assert.rejects(c.writeTx('a.db', chunks(h.file(5n, 5n))), PosMismatchError);
    assert.deepEqual(readdirSync(spool), [], 'a refused file is not left behind');
    const torn = h.file(4n, 4n).subarray(0, 150);
    await assert.rejects(c.writeTx('a.db', chunks(torn)));
    assert.deepEqual(readdirSync(spool), []);
    assert.deepEqual(s3.keys('bkt', 'spool/'), ['spool/a.db/0000000000000001-0000000000000003.ltx'], 'nothing that does not verify or continue the chain is sent');
  });

  test('a chain: snapshot, then files that continue it; posMap and position across listing pages', async () => {
    const c = client('chain');
    const h = history();
    assert.deepEqual(await c.posMap(), new Map());
    assert.equal(await c.writeTx('a.db', chunks(h.file(1n, 3n), 100)), 3n);
    for (let t = 4n; t <= 10n; t++) assert.equal(await c.writeTx('a.db', chunks(h.file(t, t))), t);
    // Page size 3 in the stand-in: the listing takes several pages; a fresh client reads and verifies the newest object.
    assert.deepEqual(await client('chain').posMap(), new Map([['a.db', h.pos(10n)]]));
    assert.deepEqual(s3.keys('bkt', 'chain/').slice(0, 2), ['chain/a.db/0000000000000001-0000000000000003.ltx', 'chain/a.db/0000000000000004-0000000000000004.ltx']);
  });

  test('after the first look a position lists only newer keys and the snapshots; a re-base by another writer is seen', async () => {
    const h = history();
    const writer = client('lists');
    await writer.writeTx('a.db', chunks(h.file(1n, 3n)));
    for (let t = 4n; t <= 10n; t++) await writer.writeTx('a.db', chunks(h.file(t, t)));
    await writer.writeTx('b.db', chunks(h.file(1n, 3n)));
    const reader = client('lists');
    assert.deepEqual(await reader.posMap(), new Map([['a.db', h.pos(10n)], ['b.db', h.pos(3n)]]));
    s3.requests.length = 0;
    assert.deepEqual(await reader.position('a.db'), h.pos(10n));
    const lists = s3.requests.filter((r) => r.includes('list-type=2'));
    assert.ok(lists.length <= 2 && lists.every((r) => /start-after=|prefix=lists%2Fa\.db%2F0000000000000001-/.test(r)), lists.join('\n'));
    // Another writer re-bases a.db with a snapshot further on: the reader's short listings find it.
    const more = history();
    for (let i = 0; i < 5; i++) more.commit([2]);
    await client('lists').writeTx('a.db', chunks(more.file(1n, 15n)));
    assert.deepEqual(await reader.position('a.db'), more.pos(15n));
  });

  test('a restore to a TXID plans (and downloads) only the newest snapshot before it and the files after', async () => {
    const c = client('plan');
    const h = history();
    await c.writeTx('a.db', chunks(h.file(1n, 3n)));
    for (let t = 4n; t <= 6n; t++) await c.writeTx('a.db', chunks(h.file(t, t)));
    await c.writeTx('a.db', chunks(h.file(1n, 8n)));
    for (let t = 9n; t <= 10n; t++) await c.writeTx('a.db', chunks(h.file(t, t)));
    const names = await c.files('a.db');
    assert.equal(names.length, 7);
    const plan = planRestore(names, { txid: 10n }, () => 0);
    assert.deepEqual(plan, ['0000000000000001-0000000000000008.ltx', '0000000000000009-0000000000000009.ltx', '000000000000000a-000000000000000a.ltx']);
    assert.deepEqual(planRestore(names, { txid: 5n }, () => 0), ['0000000000000001-0000000000000003.ltx', '0000000000000004-0000000000000004.ltx', '0000000000000005-0000000000000005.ltx']);
    const dir = mkdtempSync(join(tmpdir(), 's3-plan-'));
    dirs.push(dir);
    s3.requests.length = 0;
    assert.equal(await c.download('a.db', dir, plan), 3);
    assert.equal(s3.requests.filter((r) => r.startsWith('GET /bkt/plan/')).length, 3);
    const out = join(dir, 'at-10.db');
    restoreDatabase(dir, 'a.db', { txid: 10n }, out);
    assert.ok(readFileSync(out).equals(h.image(10n)));
  });

  test('a file that does not continue the chain is refused with the backup position, and nothing is stored', async () => {
    const c = client('gap');
    const h = history();
    await c.writeTx('a.db', chunks(h.file(1n, 3n)));
    const before = s3.keys('bkt', 'gap/');
    await assert.rejects(c.writeTx('a.db', chunks(h.file(5n, 5n))), (e: unknown) => e instanceof PosMismatchError && e.pos.txid === 3n);
    const other = new History(PAGE, 77);
    for (let t = 0; t < 4; t++) other.commit([1, 2, 3], 3);
    await assert.rejects(c.writeTx('a.db', chunks(other.file(4n, 4n))), PosMismatchError);
    const corrupt = h.file(4n, 4n);
    corrupt[corrupt.length - 20] ^= 0xff;
    await assert.rejects(c.writeTx('a.db', chunks(corrupt)));
    assert.deepEqual(s3.keys('bkt', 'gap/'), before);
  });

  test('download and restore: the database at a chosen TXID, byte for byte', async () => {
    const c = client('restore');
    const h = history();
    await c.writeTx('a.db', chunks(h.file(1n, 3n)));
    await c.writeTx('a.db', chunks(h.file(4n, 7n)));
    await c.writeTx('a.db', chunks(h.file(8n, 10n)));
    const dir = mkdtempSync(join(tmpdir(), 's3-restore-'));
    dirs.push(dir);
    assert.equal(await c.download('a.db', dir), 3);
    for (const t of [3n, 7n, 10n]) {
      const out = join(dir, `at-${t}.db`);
      assert.equal(restoreDatabase(dir, 'a.db', { txid: t }, out).txid, t);
      assert.ok(readFileSync(out).equals(h.image(t)), `image at TXID ${t}`);
    }
  });
});
