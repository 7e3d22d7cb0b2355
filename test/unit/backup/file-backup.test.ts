/**
 * FileBackupClient and restoreDatabase against real folders, with LTX files
 * written by the project's encoder from a known sequence of page changes, so
 * every checksum is the real rolling one and every expected database image
 * is computed independently of the code under test.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setImmediate as tick } from 'node:timers/promises';
import {
  type Pos,
  formatFilename,
} from '../../../src/ltx/index.js';
import { PosMismatchError } from '../../../src/backup/client.js';
import { BASE_MS, History, chunks } from './history.js';
import { FileBackupClient } from '../../../src/backup/file.js';
import { RestoreError, restoreDatabase } from '../../../src/backup/restore.js';

const PAGE = 512;

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(prefix = 'file-backup-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

/**
 * Seven transactions of a database that grows, shrinks and grows again:
 * 1: pages 1-3; 2: page 2; 3: grows to 4; 4: page 3; 5: shrinks to 2;
 * 6: grows to 5; 7: pages 2 and 5.
 */
function historyA(): History {
  const h = new History(PAGE, 0);
  h.commit([1, 2, 3], 3);
  h.commit([2]);
  h.commit([1, 4], 4);
  h.commit([3]);
  h.commit([1], 2);
  h.commit([1, 3, 4, 5], 5);
  h.commit([2, 5]);
  return h;
}

/** Another history of nine transactions (different page contents, committed later). */
function historyB(n = 9): History {
  const h = new History(PAGE, 5000, BASE_MS + 3_600_000);
  h.commit([1, 2], 2);
  for (let i = 2; i <= n; i++) h.commit(i % 3 === 0 ? [1, i % 2 === 0 ? 2 : 3] : [2, 3], 3);
  return h;
}


/** As `chunks`, yielding to the event loop before every chunk (a slow upload). */
async function* slowChunks(buf: Uint8Array, size: number): AsyncIterable<Uint8Array> {
  for (let off = 0; off < buf.length; off += size) {
    await tick();
    yield buf.subarray(off, Math.min(off + size, buf.length));
  }
}

function ls(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir).sort() : [];
}

function name(min: bigint, max: bigint): string {
  return formatFilename(min, max);
}

/** A backup client in a new folder. */
function backup(): { client: FileBackupClient; root: string } {
  const root = join(tempDir(), 'backup');
  return { client: new FileBackupClient(root), root };
}

function isPosMismatch(pos: Pos): (e: unknown) => boolean {
  return (e: unknown) => {
    assert.ok(e instanceof PosMismatchError, `expected PosMismatchError, got ${String(e)}`);
    assert.deepEqual(e.pos, pos);
    return true;
  };
}

describe('FileBackupClient', () => {
  test('an empty folder has no positions', async () => {
    const { client, root } = backup();
    assert.deepEqual(await client.posMap(), new Map());
    assert.deepEqual(client.position('db'), { txid: 0n, postApplyChecksum: 0n });
    assert.equal(client.url, `file://${root}`);
  });

  test('a snapshot starts a chain; posMap and position report its (maxTXID, post-apply checksum)', async () => {
    const { client, root } = backup();
    const h = historyA();
    const snap = h.file(1n, 3n);
    assert.equal(await client.writeTx('db', chunks(snap)), 3n);
    assert.deepEqual(await client.posMap(), new Map([['db', h.pos(3n)]]));
    assert.deepEqual(client.position('db'), h.pos(3n));
    assert.deepEqual(ls(join(root, 'db')), [name(1n, 3n)]);
    assert.ok(readFileSync(join(root, 'db', name(1n, 3n))).equals(snap));
  });

  test('an incremental file continuing the chain is accepted and the hwm is its maxTXID', async () => {
    const { client, root } = backup();
    const h = historyA();
    await client.writeTx('db', chunks(h.file(1n, 3n)));
    assert.equal(await client.writeTx('db', chunks(h.file(4n, 4n))), 4n);
    assert.equal(await client.writeTx('db', chunks(h.file(5n, 7n, true))), 7n);
    assert.deepEqual(client.position('db'), h.pos(7n));
    assert.deepEqual(await client.posMap(), new Map([['db', h.pos(7n)]]));
    assert.deepEqual(ls(join(root, 'db')), [name(1n, 3n), name(4n, 4n), name(5n, 7n)]);
  });

  test('a file that skips a TXID, or whose pre-apply checksum differs, is refused and leaves nothing', async () => {
    const { client, root } = backup();
    const h = historyA();
    await client.writeTx('db', chunks(h.file(1n, 3n)));
    const before = ls(join(root, 'db'));
    // 5-5 continues TXID 4, which the backup does not have.
    await assert.rejects(client.writeTx('db', chunks(h.file(5n, 5n))), isPosMismatch(h.pos(3n)));
    assert.deepEqual(ls(join(root, 'db')), before);
    // 4-4 of another history: right TXID, wrong pre-apply checksum.
    const other = historyB();
    assert.notEqual(other.checksum(3n), h.checksum(3n));
    await assert.rejects(client.writeTx('db', chunks(other.file(4n, 4n))), (e: unknown) => {
      assert.ok(isPosMismatch(h.pos(3n))(e));
      assert.match((e as Error).message, /0000000000000004-0000000000000004\.ltx .*does not continue the backup/);
      return true;
    });
    assert.deepEqual(ls(join(root, 'db')), before);
    assert.deepEqual(ls(root), ['db']);
    assert.deepEqual(client.position('db'), h.pos(3n));
    // The chain still takes the right file afterwards.
    assert.equal(await client.writeTx('db', chunks(h.file(4n, 4n))), 4n);
  });

  test('a corrupt file is refused and leaves nothing', async () => {
    const { client, root } = backup();
    const h = historyA();
    // On an empty backup: no file, no position (the database folder may be created, but holds nothing).
    const snap = Buffer.from(h.file(1n, 3n));
    snap[snap.length >> 1] ^= 0x40;
    await assert.rejects(client.writeTx('db', chunks(snap)));
    assert.deepEqual(ls(join(root, 'db')), []);
    assert.deepEqual(await client.posMap(), new Map());
    // Continuing a chain.
    await client.writeTx('db', chunks(h.file(1n, 3n)));
    const inc = Buffer.from(h.file(4n, 4n));
    inc[inc.length >> 1] ^= 0x01;
    await assert.rejects(client.writeTx('db', chunks(inc)), (e: unknown) => !(e instanceof PosMismatchError));
    assert.deepEqual(ls(join(root, 'db')), [name(1n, 3n)]);
    assert.deepEqual(client.position('db'), h.pos(3n));
    // A truncated body too.
    await assert.rejects(client.writeTx('db', chunks(h.file(4n, 4n).subarray(0, 300))));
    assert.deepEqual(ls(join(root, 'db')), [name(1n, 3n)]);
  });

  test('a snapshot ahead of the position re-bases the chain and keeps the older files', async () => {
    const { client, root } = backup();
    const a = historyA();
    const b = historyB();
    await client.writeTx('db', chunks(a.file(1n, 3n)));
    // A snapshot of another history, ahead of the backup.
    assert.equal(await client.writeTx('db', chunks(b.file(1n, 5n))), 5n);
    assert.deepEqual(ls(join(root, 'db')), [name(1n, 3n), name(1n, 5n)]);
    assert.deepEqual(client.position('db'), b.pos(5n));
    // The chain goes on from the snapshot, and only from it.
    await assert.rejects(client.writeTx('db', chunks(a.file(4n, 4n))), isPosMismatch(b.pos(5n)));
    assert.equal(await client.writeTx('db', chunks(b.file(6n, 6n))), 6n);
    assert.deepEqual(ls(join(root, 'db')), [name(1n, 3n), name(1n, 5n), name(6n, 6n)]);
    assert.deepEqual(client.position('db'), b.pos(6n));
  });

  test(
    'after a snapshot re-bases a chain that has incremental files, the position is the snapshot\'s and the chain continues from it',
    async () => {
      const { client, root } = backup();
      const a = historyA();
      const b = historyB();
      await client.writeTx('db', chunks(a.file(1n, 3n)));
      await client.writeTx('db', chunks(a.file(4n, 4n)));
      assert.equal(await client.writeTx('db', chunks(b.file(1n, 6n))), 6n);
      assert.deepEqual(ls(join(root, 'db')), [name(1n, 3n), name(1n, 6n), name(4n, 4n)]);
      assert.deepEqual(client.position('db'), b.pos(6n));
      assert.deepEqual(await client.posMap(), new Map([['db', b.pos(6n)]]));
      assert.equal(await client.writeTx('db', chunks(b.file(7n, 7n))), 7n);
    },
  );

  test('a snapshot at or behind the position is refused', async () => {
    const { client, root } = backup();
    const h = historyA();
    await client.writeTx('db', chunks(h.file(1n, 3n)));
    await client.writeTx('db', chunks(h.file(4n, 4n)));
    const before = ls(join(root, 'db'));
    await assert.rejects(client.writeTx('db', chunks(h.file(1n, 4n))), isPosMismatch(h.pos(4n)));
    await assert.rejects(client.writeTx('db', chunks(h.file(1n, 3n))), isPosMismatch(h.pos(4n)));
    await assert.rejects(client.writeTx('db', chunks(historyB().file(1n, 2n))), isPosMismatch(h.pos(4n)));
    assert.deepEqual(ls(join(root, 'db')), before);
    assert.deepEqual(client.position('db'), h.pos(4n));
  });

  test('an invalid database name is refused', async () => {
    const parent = tempDir();
    const root = join(parent, 'backup');
    const client = new FileBackupClient(root);
    const snap = historyA().file(1n, 3n);
    for (const bad of ['../x', '', '..', '.', 'a/b']) {
      await assert.rejects(client.writeTx(bad, chunks(snap)), /invalid database name/, `name ${JSON.stringify(bad)}`);
    }
    assert.deepEqual(ls(root), []);
    assert.deepEqual(ls(parent), ['backup']);
    assert.deepEqual(await client.posMap(), new Map());
    // The client still works after the refusals.
    assert.equal(await client.writeTx('db', chunks(snap)), 3n);
  });

  test('two writeTx calls started at once are serialized, in call order', async () => {
    const { client, root } = backup();
    const h = historyA();
    // The first body is slow, so an unserialized second write would check the chain before the snapshot lands.
    const first = client.writeTx('db', slowChunks(h.file(1n, 3n), 64));
    const second = client.writeTx('db', chunks(h.file(4n, 4n)));
    assert.deepEqual(await Promise.all([first, second]), [3n, 4n]);
    assert.deepEqual(ls(join(root, 'db')), [name(1n, 3n), name(4n, 4n)]);
    assert.deepEqual(client.position('db'), h.pos(4n));

    // Call order counts: the continuation first is refused, the snapshot after it lands.
    const other = backup();
    const early = other.client.writeTx('db', slowChunks(h.file(4n, 4n), 64));
    const late = other.client.writeTx('db', chunks(h.file(1n, 3n)));
    await assert.rejects(early, isPosMismatch({ txid: 0n, postApplyChecksum: 0n }));
    assert.equal(await late, 3n);
    assert.deepEqual(ls(join(other.root, 'db')), [name(1n, 3n)]);
  });

  test('the body can come in many small chunks', async () => {
    const { client, root } = backup();
    const h = historyA();
    const snap = h.file(1n, 3n);
    const inc = h.file(4n, 7n, true);
    assert.equal(await client.writeTx('db', chunks(snap, 1)), 3n);
    assert.equal(await client.writeTx('db', slowChunks(inc, 7)), 7n);
    assert.ok(readFileSync(join(root, 'db', name(1n, 3n))).equals(snap));
    assert.ok(readFileSync(join(root, 'db', name(4n, 7n))).equals(inc));
    assert.deepEqual(client.position('db'), h.pos(7n));
  });
});

describe('restoreDatabase', () => {
  /** A backup of history A as snapshot 1-3, 4-4 and 5-7 (written through the client), and an output folder. */
  async function chainBackup(): Promise<{ root: string; out: string; client: FileBackupClient; a: History }> {
    const { client, root } = backup();
    const a = historyA();
    await client.writeTx('db', chunks(a.file(1n, 3n)));
    await client.writeTx('db', chunks(a.file(4n, 4n)));
    await client.writeTx('db', chunks(a.file(5n, 7n, true)));
    return { root, out: tempDir('restore-out-'), client, a };
  }

  test('restoring at 3, 4 and 7 gives the images of applying the files in order', async () => {
    const { root, out, a } = await chainBackup();
    const cases: Array<[bigint, string[]]> = [
      [3n, [name(1n, 3n)]],
      [4n, [name(1n, 3n), name(4n, 4n)]],
      [7n, [name(1n, 3n), name(4n, 4n), name(5n, 7n)]],
    ];
    for (const [txid, files] of cases) {
      const path = join(out, `at-${txid}.db`);
      const r = restoreDatabase(root, 'db', { txid }, path);
      assert.deepEqual(r, { txid, postApplyChecksum: a.checksum(txid), timestampMs: a.timestamp(txid), files });
      assert.ok(readFileSync(path).equals(a.image(txid)), `image at ${txid}`);
    }
    // The images really differ (the database shrank and grew in between).
    assert.equal(a.image(4n).length, 4 * PAGE);
    assert.equal(a.image(7n).length, 5 * PAGE);
    assert.deepEqual(ls(out), ['at-3.db', 'at-4.db', 'at-7.db']);
  });

  test('a TXID no file ends at is a RestoreError naming where files end, and writes nothing', async () => {
    const { root, out } = await chainBackup();
    for (const txid of [5n, 6n, 8n]) {
      assert.throws(
        () => restoreDatabase(root, 'db', { txid }, join(out, 'x.db')),
        (e: unknown) => {
          assert.ok(e instanceof RestoreError);
          assert.match(e.message, new RegExp(`TXID 000000000000000${txid}`));
          assert.match(e.message, /files end at 0000000000000003, 0000000000000004, 0000000000000007/);
          return true;
        },
      );
    }
    assert.deepEqual(ls(out), []);
  });

  test('without a target it restores the newest TXID', async () => {
    const { root, out, a } = await chainBackup();
    const r = restoreDatabase(root, 'db', {}, join(out, 'newest.db'));
    assert.equal(r.txid, 7n);
    assert.equal(r.postApplyChecksum, a.checksum(7n));
    assert.ok(readFileSync(join(out, 'newest.db')).equals(a.image(7n)));
  });

  test('by timestampMs: the newest file committed at or before the time', async () => {
    const { root, out, a } = await chainBackup();
    const at = (ms: number): bigint => restoreDatabase(root, 'db', { timestampMs: ms }, join(out, `t-${ms}.db`)).txid;
    assert.equal(at(a.timestamp(3n)), 3n);
    assert.equal(at(a.timestamp(4n) - 1), 3n);
    assert.equal(at(a.timestamp(4n)), 4n);
    // 5 and 6 are inside 5-7, committed (as a file) at 7's time.
    assert.equal(at(a.timestamp(6n)), 4n);
    assert.equal(at(a.timestamp(7n)), 7n);
    assert.equal(at(a.timestamp(7n) + 86_400_000), 7n);
    assert.ok(readFileSync(join(out, `t-${a.timestamp(6n)}.db`)).equals(a.image(4n)));
    const before = ls(out);
    assert.throws(() => restoreDatabase(root, 'db', { timestampMs: a.timestamp(3n) - 1 }, join(out, 'early.db')), (e: unknown) => {
      assert.ok(e instanceof RestoreError);
      assert.match(e.message, /nothing committed at or before/);
      return true;
    });
    assert.deepEqual(ls(out), before);
  });

  test('with a re-base snapshot 1-9 after the chain, 7 comes from the old chain and 9 from the snapshot', async () => {
    const { root, out, client, a } = await chainBackup();
    const b = historyB();
    assert.equal(await client.writeTx('db', chunks(b.file(1n, 9n))), 9n);
    const r7 = restoreDatabase(root, 'db', { txid: 7n }, join(out, '7.db'));
    assert.deepEqual(r7.files, [name(1n, 3n), name(4n, 4n), name(5n, 7n)]);
    assert.ok(readFileSync(join(out, '7.db')).equals(a.image(7n)));
    const r9 = restoreDatabase(root, 'db', { txid: 9n }, join(out, '9.db'));
    assert.deepEqual(r9, { txid: 9n, postApplyChecksum: b.checksum(9n), timestampMs: b.timestamp(9n), files: [name(1n, 9n)] });
    assert.ok(readFileSync(join(out, '9.db')).equals(b.image(9n)));
    assert.equal(restoreDatabase(root, 'db', {}, join(out, 'newest.db')).txid, 9n);
    // Old history's times still restore from the old chain.
    assert.equal(restoreDatabase(root, 'db', { timestampMs: a.timestamp(4n) }, join(out, 'ts.db')).txid, 4n);
  });

  test('failures leave no output and no temporary files', async () => {
    const { root, out } = await chainBackup();
    // No backup of the database.
    assert.throws(() => restoreDatabase(root, 'nope', {}, join(out, 'a.db')), (e: unknown) => e instanceof RestoreError && /no backup of nope/.test(e.message));
    // A gap: 1-3 and 5-7 without 4-4 (laid out by hand: the client would refuse it).
    const gap = join(tempDir(), 'gap');
    const a = historyA();
    mkdirSync(join(gap, 'db'), { recursive: true });
    writeFileSync(join(gap, 'db', name(1n, 3n)), a.file(1n, 3n));
    writeFileSync(join(gap, 'db', name(5n, 7n)), a.file(5n, 7n));
    assert.throws(() => restoreDatabase(gap, 'db', { txid: 7n }, join(out, 'b.db')), (e: unknown) => {
      assert.ok(e instanceof RestoreError);
      assert.match(e.message, /no snapshot with a contiguous chain of files up to TXID 0000000000000007/);
      return true;
    });
    // A file of the chain corrupted on disk after it landed: the compaction fails mid-way.
    const bad = readFileSync(join(root, 'db', name(4n, 4n)));
    bad[bad.length >> 1] ^= 0x10;
    writeFileSync(join(root, 'db', name(4n, 4n)), bad);
    assert.throws(() => restoreDatabase(root, 'db', { txid: 7n }, join(out, 'c.db')));
    assert.deepEqual(ls(out), []);
    // What does not need the corrupt file still restores.
    restoreDatabase(root, 'db', { txid: 3n }, join(out, 'd.db'));
    assert.deepEqual(ls(out), ['d.db']);
  });
});
