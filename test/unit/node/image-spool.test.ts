import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { ChannelImageLocks, spoolImage, type HeldImage, type ImageLocks } from '../../../src/node/image-spool.js';
import { StoreChannel } from '../../../src/node/store-channel.js';
import type { StoreCommand, StoreCommandResult } from '../../../src/store/messages.js';
import { checksumDatabase } from '../../../src/ltx/index.js';

const PAGE = 1024;
const FRAME = 24 + PAGE;
const base = mkdtempSync(join(tmpdir(), 'litefs-image-spool-'));
after(() => rmSync(base, { recursive: true, force: true }));

function pageOf(tag: number): Buffer {
  return Buffer.alloc(PAGE, tag);
}

function checksumOf(image: Buffer): bigint {
  return checksumDatabase(PAGE, image.length / PAGE, (p) => image.subarray((p - 1) * PAGE, p * PAGE));
}

/** A stand-in for the FUSE thread's hold (no mount here): hands out fixed facts and counts releases. */
class FixedLocks implements ImageLocks {
  releases = 0;
  constructor(private readonly facts: Omit<HeldImage, 'release'>) {}
  async hold(): Promise<HeldImage> {
    return { ...this.facts, release: () => void this.releases++ };
  }
}

/** A data dir whose database file holds pages tagged 1..`pages` and whose WAL holds `walPages` (tag 100+pgno), in that order. */
function dataDir(pages: number, walPages: number[]): { dir: string; frames: Map<number, number>; expected: Buffer } {
  const dir = mkdtempSync(join(base, 'data-'));
  const db = join(dir, 'dbs', 'a.db');
  mkdirSync(db, { recursive: true });
  writeFileSync(join(db, 'database'), Buffer.concat(Array.from({ length: pages }, (_, i) => pageOf(i + 1))));
  const frames = new Map<number, number>();
  const wal: Buffer[] = [Buffer.alloc(32)];
  walPages.forEach((pgno, i) => {
    frames.set(pgno, 32 + i * FRAME);
    wal.push(Buffer.alloc(24), pageOf(100 + pgno));
  });
  writeFileSync(join(db, 'wal'), Buffer.concat(wal));
  const expected = Buffer.concat(Array.from({ length: pages }, (_, i) => pageOf(frames.has(i + 1) ? 101 + i : i + 1)));
  return { dir, frames, expected };
}

async function collect(pages: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const p of pages) parts.push(Buffer.from(p));
  return Buffer.concat(parts);
}

describe('spoolImage', () => {
  test('WAL frames, consecutive and scattered and across chunks, are laid over the database file', async () => {
    // 1500 pages of 1 KiB make two chunks; frames for pages in both, some in runs, some out of order.
    const walPages = [3, 4, 5, 1200, 1201, 7, 1499, 2];
    const { dir, frames, expected } = dataDir(1500, walPages);
    const locks = new FixedLocks({ pos: { txid: 9n, postApplyChecksum: checksumOf(expected) }, pageSize: PAGE, pageCount: 1500, walFrames: frames });
    const image = await spoolImage(dir, 'a.db', locks, new AbortController().signal);
    assert.equal(locks.releases, 1);
    assert.ok((await collect(image.pages(new AbortController().signal))).equals(expected));
    await image.close();
    assert.deepEqual(readdirSync(join(dir, 'tmp')), []);
  });

  test('a copy whose checksum is not the held position is refused, the locks released and no spool left', async () => {
    const { dir, frames } = dataDir(4, [2]);
    const locks = new FixedLocks({ pos: { txid: 9n, postApplyChecksum: 0x8000000000000001n }, pageSize: PAGE, pageCount: 4, walFrames: frames });
    await assert.rejects(spoolImage(dir, 'a.db', locks, new AbortController().signal), /snapshot checksum mismatch/);
    assert.equal(locks.releases, 1);
    assert.deepEqual(readdirSync(join(dir, 'tmp')), []);
  });
});

describe('ChannelImageLocks', () => {
  /** The FUSE thread's side played by `answer` (no worker here): it sees each command and may answer it. */
  function channelWith(answer: (cmd: StoreCommand, reply: (r: StoreCommandResult) => void) => void): { locks: ChannelImageLocks; seen: StoreCommand[] } {
    const seen: StoreCommand[] = [];
    const channel: StoreChannel = new StoreChannel((cmd) => {
      seen.push(cmd);
      answer(cmd, (r) => queueMicrotask(() => channel.onResult(r)));
    });
    return { locks: new ChannelImageLocks(channel, 50), seen };
  }
  const facts = { txid: '0000000000000007', checksum: '8000000000000001', pageSize: PAGE, pageCount: 3, walFrames: new Map([[2, 32]]) };

  test('busy answers are retried until held; the release names the hold that was granted', async () => {
    let asked = 0;
    const { locks, seen } = channelWith((cmd, reply) => {
      if (cmd.type !== 'imageHold') return;
      reply(++asked < 3 ? { type: 'commandResult', id: cmd.id, status: 'busy' } : { type: 'commandResult', id: cmd.id, status: 'ok', inodes: [], image: facts });
    });
    const held = await locks.hold('a.db', new AbortController().signal);
    assert.deepEqual(held.pos, { txid: 7n, postApplyChecksum: 0x8000000000000001n });
    assert.equal(held.pageCount, 3);
    assert.deepEqual([...held.walFrames], [[2, 32]]);
    held.release();
    const granted = seen.filter((c) => c.type === 'imageHold').at(-1) as { holdID: number };
    assert.deepEqual(seen.at(-1), { type: 'imageRelease', db: 'a.db', holdID: granted.holdID });
  });

  test('an unanswered request is withdrawn (released) and asked again; an error rejects; an abort stops the wait', async () => {
    let asked = 0;
    const { locks, seen } = channelWith((cmd, reply) => {
      if (cmd.type === 'imageHold' && ++asked === 2) reply({ type: 'commandResult', id: cmd.id, status: 'error', message: 'database not found: a.db' });
    });
    await assert.rejects(locks.hold('a.db', new AbortController().signal), /not found/);
    assert.deepEqual(
      seen.map((c) => c.type),
      ['imageHold', 'imageRelease', 'imageHold'],
    );
    const silent = channelWith(() => undefined);
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 10);
    await assert.rejects(silent.locks.hold('a.db', ac.signal), /cancelled/);
    assert.equal(silent.seen.at(-1)?.type, 'imageRelease');
  });
});
