/**
 * The /stream loop on its own, with a minimal in-test replication source:
 * chunking of large files, DropDB bookkeeping, the filter, snapshots when no
 * incremental file fits, and the snapshot timeout.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChangeSubscription, LTXFileStream, ReplicationSource } from '../../../src/http/api.js';
import { decodeFrames } from '../../../src/http/frames.js';
import type { Pos } from '../../../src/http/posmap.js';
import { StreamSession } from '../../../src/http/stream-session.js';

const never: ChangeSubscription = {
  next: (signal) => new Promise((resolve) => signal.addEventListener('abort', () => resolve(undefined), { once: true })),
  close: () => {},
};

function source(over: Partial<ReplicationSource> & { files?: Record<string, Uint8Array> }): ReplicationSource {
  const files = over.files ?? {};
  return {
    primarySignal: () => new AbortController().signal,
    subscribeChanges: () => never,
    databaseNames: () => ['x.db'],
    position: (name) => (name === 'x.db' ? { txid: 2n, postApplyChecksum: 22n } : undefined),
    hwm: () => 5n,
    openLTXFile: async (name, txid): Promise<LTXFileStream | undefined> => {
      const f = files[`${name}@${txid}`];
      if (!f) return undefined;
      return {
        preApplyChecksum: 11n,
        pos: { txid, postApplyChecksum: 22n },
        body: (async function* () {
          yield f;
        })(),
        close: async () => {},
      };
    },
    writeSnapshot: async (_name, write): Promise<Pos> => {
      await write(Buffer.from('snapshot-header'));
      await write(Buffer.from('snapshot-body'));
      return { txid: 2n, postApplyChecksum: 22n };
    },
    ...over,
  };
}

/** Runs a session until its first heartbeat and returns the frames. */
async function firstBurst(src: ReplicationSource, positions: Map<string, Pos>, filter: string[] = [], snapshotReasons = false) {
  const out: Buffer[] = [];
  const ac = new AbortController();
  const session = new StreamSession({
    source: src,
    positions,
    filter: new Set(filter),
    subscription: never,
    signal: ac.signal,
    snapshotTimeoutMs: 0,
    snapshotReasons,
    write: async (b) => {
      const buf = Buffer.from(b);
      out.push(buf);
      if (buf.length === 12 && buf.readUInt32BE(0) === 7) ac.abort();
      return true;
    },
  });
  await session.run();
  return decodeFrames(Buffer.concat(out));
}

describe('stream session', () => {
  test('an LTX file larger than a chunk is split at 65535 bytes and followed by the HWM', async () => {
    const big = Buffer.alloc(150_000, 1);
    const frames = await firstBurst(source({ files: { 'x.db@2': big } }), new Map([['x.db', { txid: 1n, postApplyChecksum: 11n }]]));
    assert.deepEqual(frames.map((f) => f.type), ['ltx', 'hwm', 'ready', 'heartbeat']);
    assert.ok(frames[0]!.type === 'ltx');
    assert.deepEqual(frames[0]!.chunks, [65535, 65535, 18930]);
    assert.deepEqual(frames[1], { type: 'hwm', txid: 5n, name: 'x.db' });
  });

  test('a replica whose checksum does not fit the next file gets a snapshot, without an HWM frame', async () => {
    const frames = await firstBurst(source({ files: { 'x.db@2': Buffer.from('ltx') } }), new Map([['x.db', { txid: 1n, postApplyChecksum: 99n }]]));
    assert.deepEqual(frames.map((f) => f.type), ['ltx', 'ready', 'heartbeat']);
    assert.ok(frames[0]!.type === 'ltx');
    assert.equal(frames[0]!.payload.toString(), 'snapshot-headersnapshot-body');
  });

  test('unknown databases get DropDB and leave the position map; the filter limits the burst', async () => {
    const positions = new Map([
      ['gone.db', { txid: 1n, postApplyChecksum: 1n }],
      ['x.db', { txid: 2n, postApplyChecksum: 22n }],
    ]);
    const frames = await firstBurst(source({}), positions);
    assert.deepEqual(frames.map((f) => f.type), ['dropDB', 'ready', 'heartbeat']);
    assert.equal(positions.has('gone.db'), false);
    const filtered = await firstBurst(source({}), new Map([['gone.db', { txid: 1n, postApplyChecksum: 1n }]]), ['x.db']);
    assert.deepEqual(filtered.map((f) => f.type), ['ltx', 'ready', 'heartbeat']);
  });

  test('the snapshot gets an abort signal that fires after the snapshot timeout', async () => {
    let aborted = false;
    const src = source({
      writeSnapshot: (_n, _w, signal) =>
        new Promise((_, reject) =>
          signal.addEventListener('abort', () => {
            aborted = true;
            reject(signal.reason as Error);
          }),
        ),
    });
    const session = new StreamSession({
      source: src,
      positions: new Map(),
      filter: new Set(),
      subscription: never,
      signal: new AbortController().signal,
      snapshotTimeoutMs: 50,
      write: async () => true,
    });
    // AbortSignal.timeout's timer does not keep the process alive (a server's sockets do); hold it here.
    const keepAlive = setTimeout(() => {}, 5000);
    try {
      await assert.rejects(session.run(), { name: 'TimeoutError' });
    } finally {
      clearTimeout(keepAlive);
    }
    assert.equal(aborted, true);
  });

  const reasonCases: [string, Record<string, Uint8Array>, Pos | undefined, string][] = [
    ['a replica with nothing', {}, undefined, 'empty'],
    ['a replica whose next file is gone', {}, { txid: 1n, postApplyChecksum: 11n }, 'behind'],
    ["a replica whose checksum is not the next file's pre-apply checksum", { 'x.db@2': Buffer.from('ltx') }, { txid: 1n, postApplyChecksum: 99n }, 'diverged'],
    ['a replica at the same TXID with another checksum', {}, { txid: 2n, postApplyChecksum: 99n }, 'diverged'],
    ['a replica ahead of the primary', {}, { txid: 7n, postApplyChecksum: 77n }, 'ahead'],
  ];
  for (const [what, files, pos, reason] of reasonCases) {
    test(`${what}: a SnapshotReason frame '${reason}' right before the snapshot, only when asked for`, async () => {
      const positions = (): Map<string, Pos> => new Map(pos ? [['x.db', pos]] : []);
      const asked = await firstBurst(source({ files }), positions(), [], true);
      assert.deepEqual(asked.map((f) => f.type), ['snapshotReason', 'ltx', 'ready', 'heartbeat']);
      assert.deepEqual(asked[0], { type: 'snapshotReason', name: 'x.db', reason });
      const plain = await firstBurst(source({ files }), positions());
      assert.deepEqual(plain.map((f) => f.type), ['ltx', 'ready', 'heartbeat']);
    });
  }

  test('incremental LTX frames never get a SnapshotReason frame', async () => {
    const frames = await firstBurst(source({ files: { 'x.db@2': Buffer.from('ltx') } }), new Map([['x.db', { txid: 1n, postApplyChecksum: 11n }]]), [], true);
    assert.deepEqual(frames.map((f) => f.type), ['ltx', 'hwm', 'ready', 'heartbeat']);
  });
});
