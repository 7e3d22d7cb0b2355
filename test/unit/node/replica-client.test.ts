/**
 * ReplicaClient against a primary: the real ApiServer over in-memory
 * histories (catch-up, live commits, restarts, faults in the files it
 * serves), and a scripted HTTP/2 server for what a correct primary never
 * sends (snapshot reasons, unknown frames, truncation, silence).
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CHUNK_TERMINATOR, encodeChunks } from '../../../src/http/chunk.js';
import { encodeFrame, encodeLTXFrame } from '../../../src/http/frames.js';
import { decodePosMap, type Pos } from '../../../src/http/posmap.js';
import { decodeBytes } from '../../../src/ltx/index.js';
import { capture, wireFile } from '../http/wire-fixtures.js';
import {
  CLUSTER,
  History,
  HistoryPrimary,
  scriptedPrimary,
  startPrimary,
  startReplica,
  waitFor,
  type Replica,
} from './replica-harness.js';

const ready = encodeFrame({ type: 'ready' });
const heartbeat = (ms: number): Buffer => encodeFrame({ type: 'heartbeat', timestamp: BigInt(ms) });
const ltx = (name: string, file: Buffer): Buffer => encodeLTXFrame(name, [file]);
const reasonFrame = (name: string, reason: string): Buffer => encodeFrame({ type: 'snapshotReason', name, reason });
const u32 = (v: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v);
  return b;
};

/** a.db with `n` transactions. */
function history(n: number, tag = 'p'): History {
  const h = new History();
  for (let i = 1; i <= n; i++) h.commit(i === 1 ? { 1: `${tag}-1`, 2: `${tag}-1b` } : { [1 + (i % 2)]: `${tag}-${i}` });
  return h;
}

/** Another database's history with `n` transactions (only page 1); its checksums differ from history()'s. */
function other(n: number): History {
  const h = new History();
  for (let i = 1; i <= n; i++) h.commit({ 1: `other-${i}` });
  return h;
}

function applied(r: Replica, db = 'a.db'): string[] {
  return r.applier.calls.filter((c) => c.db === db).map((c) => `${c.snapshot ? 'snap' : 'ltx'} ${c.minTXID}-${c.maxTXID}`);
}

const replicas: Replica[] = [];
const cleanups: (() => Promise<void>)[] = [];
function track(r: Replica): Replica {
  replicas.push(r);
  return r;
}
after(async () => {
  for (const r of replicas) await r.stop();
  for (const c of cleanups) await c();
});

describe('replica client against the real ApiServer', () => {
  test('catch-up applies the missing files in order, a snapshot for an empty database, then Ready, HWM and heartbeats; live commits follow', async () => {
    const node = new HistoryPrimary();
    for (let i = 1; i <= 5; i++) node.commit('a.db', i === 1 ? { 1: 'a1', 2: 'a1b' } : { [1 + (i % 2)]: `a${i}` });
    node.commit('b.db', { 1: 'b1' });
    node.commit('b.db', { 1: 'b2' });
    const p = await startPrimary(node);
    cleanups.push(() => p.server.close());
    const r = track(startReplica(p.url, { local: new Map([['a.db', node.dbs.get('a.db')!.pos(2)]]) }));

    await waitFor('ready', () => r.events.includes('ready'));
    assert.deepEqual(applied(r, 'a.db'), ['ltx 3-3', 'ltx 4-4', 'ltx 5-5']);
    assert.deepEqual(applied(r, 'b.db'), ['snap 1-2']);
    assert.equal(r.applier.calls.find((c) => c.db === 'b.db')!.quarantine, null);
    assert.deepEqual(r.applier.positions.get('a.db'), node.position('a.db'));
    assert.deepEqual(r.applier.positions.get('b.db'), node.position('b.db'));
    assert.ok(r.events.includes('hwm a.db 500'), r.events.join('\n'));
    await waitFor('a heartbeat', () => r.timestamps.length > 0);

    node.commit('a.db', { 1: 'a6' });
    await waitFor('live commit', () => r.applier.positions.get('a.db')?.txid === 6n);
    assert.deepEqual(applied(r, 'a.db'), ['ltx 3-3', 'ltx 4-4', 'ltx 5-5', 'ltx 6-6']);
    assert.equal(r.events.filter((e) => e === 'ready').length, 1);
    assert.deepEqual(r.tmpFiles(), []);
    await r.stop();
  });

  test('primary restart: End, reconnect with the real positions, continue with incremental files (no snapshot)', async () => {
    const node = new HistoryPrimary();
    for (let i = 1; i <= 3; i++) node.commit('a.db', i === 1 ? { 1: 'a1' } : { 1: `a${i}` });
    const p1 = await startPrimary(node);
    const r = track(startReplica(p1.url));
    await waitFor('first catch-up', () => r.applier.positions.get('a.db')?.txid === 3n);
    await p1.server.close();
    await waitFor('disconnect', () => r.events.some((e) => e.startsWith('disconnected')));

    node.commit('a.db', { 1: 'a4' });
    node.commit('a.db', { 2: 'a5' });
    node.sent.length = 0;
    const p2 = await startPrimary(node, p1.port);
    cleanups.push(() => p2.server.close());
    await waitFor('catch-up after restart', () => r.applier.positions.get('a.db')?.txid === 5n);
    assert.deepEqual(node.sent, ['a.db@4', 'a.db@5']);
    assert.deepEqual(applied(r), ['snap 1-3', 'ltx 4-4', 'ltx 5-5']);
    assert.equal(r.events.filter((e) => e === 'ready').length, 1, 'onReady once per process');
    await r.stop();
  });

  for (const fault of ['truncate', 'corrupt'] as const) {
    test(`a ${fault === 'truncate' ? 'truncated body' : 'corrupt LTX file (bad checksum)'} is not applied; the replica reconnects and gets it whole`, async () => {
      const node = new HistoryPrimary();
      for (let i = 1; i <= 4; i++) node.commit('a.db', i === 1 ? { 1: 'a1' } : { 1: `a${i}` });
      node.faults.set('a.db@3', fault);
      const p = await startPrimary(node);
      cleanups.push(() => p.server.close());
      const r = track(startReplica(p.url, { local: new Map([['a.db', node.dbs.get('a.db')!.pos(2)]]) }));
      await waitFor('caught up', () => r.applier.positions.get('a.db')?.txid === 4n);
      assert.deepEqual(applied(r), ['ltx 3-3', 'ltx 4-4'], 'the bad copy never reached the applier');
      // Sent twice: the primary may already have sent 4 behind the bad copy before the replica hung up.
      assert.equal(node.sent.filter((s) => s === 'a.db@3').length, 2, node.sent.join(' '));
      assert.ok(r.logs.some((l) => l.includes('failed')), r.logs.join('\n'));
      assert.deepEqual(r.tmpFiles(), []);
      await r.stop();
    });
  }

  test('an applier rejection (position mismatch) drops the stream; the replica reconnects and converges', async () => {
    const node = new HistoryPrimary();
    for (let i = 1; i <= 3; i++) node.commit('a.db', { 1: `a${i}` });
    const p = await startPrimary(node);
    cleanups.push(() => p.server.close());
    const r = track(startReplica(p.url, { local: new Map([['a.db', node.dbs.get('a.db')!.pos(1)]]) }));
    r.applier.rejectNext = 1;
    await waitFor('caught up', () => r.applier.positions.get('a.db')?.txid === 3n);
    assert.deepEqual(applied(r), ['ltx 2-2', 'ltx 3-3']);
    assert.ok(r.logs.some((l) => l.includes('injected apply failure')), r.logs.join('\n'));
    assert.ok(r.events.filter((e) => e === 'connected').length >= 2);
    assert.deepEqual(r.tmpFiles(), []);
    await r.stop();
  });

  test('cluster id: an empty local id adopts the primary\'s; our primary refuses another cluster\'s replica with 412 (logged once), nothing applied', async () => {
    const node = new HistoryPrimary();
    node.commit('a.db', { 1: 'a1' });
    const p = await startPrimary(node);
    cleanups.push(() => p.server.close());

    const adopter = track(startReplica(p.url, { localClusterID: '' }));
    await waitFor('applied', () => adopter.applier.calls.length === 1);
    assert.deepEqual(adopter.adopted, [CLUSTER]);
    await adopter.stop();

    const subscribed = node.subs.length;
    let attempts = 0;
    const other = track(startReplica(p.url, { localClusterID: 'LFSC0000000000000001', positions: () => (attempts++, new Map()) }));
    await waitFor('three refusals', () => attempts >= 3 && other.logs.length > 0);
    assert.equal(other.applier.calls.length, 0);
    assert.equal(node.subs.length, subscribed, 'refused before any stream subscription');
    const refusals = other.logs.filter((l) => l.includes('cluster id'));
    assert.equal(refusals.length, 1, other.logs.join('\n'));
    assert.match(refusals[0]!, /HTTP 412: cluster id mismatch: this node is LFSC00112233445566AA, the request is from LFSC0000000000000001/);
    assert.deepEqual(other.adopted, []);
    await other.stop();
  });

  test('cluster id: a primary that ignores Litefs-Cluster-Id (Go LiteFS) and answers with another id is refused by the replica', async () => {
    const sp = await scriptedPrimary(() => ({ bytes: [], hold: true }));
    cleanups.push(sp.close);
    const other = track(startReplica(sp.url, { localClusterID: 'LFSC0000000000000001' }));
    await waitFor('two attempts', () => sp.requests.length >= 2);
    assert.equal(sp.requests[0]!.headers['litefs-cluster-id'], 'LFSC0000000000000001');
    const refusals = other.logs.filter((l) => l.includes('cluster id'));
    assert.equal(refusals.length, 1, other.logs.join('\n'));
    assert.match(refusals[0]!, /LFSC00112233445566AA differs from this node's LFSC0000000000000001/);
    assert.deepEqual(other.adopted, []);
    await other.stop();
  });
});

describe('replica client against a scripted primary', () => {
  const h = history(3);

  /** The SnapshotReason frame (or none) and local position → quarantine request. */
  const cases: [string, string | undefined, Pos | undefined, string | null][] = [
    ['empty local, reason empty', 'empty', undefined, null],
    ['behind, reason behind', 'behind', h.pos(1), null],
    ['ahead', 'ahead', other(5).pos(5), 'ahead'],
    ['diverged', 'diverged', other(3).pos(3), 'diverged'],
    ['Go primary (no reason), local data', undefined, other(2).pos(2), 'unknown'],
    ['Go primary (no reason), nothing local', undefined, undefined, null],
  ];
  for (const [name, reason, local, want] of cases) {
    test(`snapshot: ${name} -> quarantine ${want ?? 'none'}`, async () => {
      const sp = await scriptedPrimary(() => ({
        bytes: [...(reason ? [reasonFrame('a.db', reason)] : []), ltx('a.db', h.snapshot()), ready, heartbeat(1)],
        hold: true,
      }));
      cleanups.push(sp.close);
      const r = track(startReplica(sp.url, { local: local ? new Map([['a.db', local]]) : undefined }));
      await waitFor('applied', () => r.applier.calls.length === 1);
      assert.deepEqual(r.applier.calls[0]!.quarantine, want === null ? null : { reason: want, primary: sp.url });
      assert.deepEqual(r.applier.positions.get('a.db'), h.pos());
      await r.stop();
    });
  }

  test('a reason is used only by the next snapshot of its database', async () => {
    const b = history(2, 'b');
    const sp = await scriptedPrimary(() => ({
      bytes: [reasonFrame('a.db', 'diverged'), ltx('b.db', b.snapshot()), ltx('a.db', h.snapshot()), ready],
      hold: true,
    }));
    cleanups.push(sp.close);
    const local = new Map([['a.db', other(3).pos(3)], ['b.db', other(1).pos(1)]]);
    const r = track(startReplica(sp.url, { local }));
    await waitFor('two applied', () => r.applier.calls.length === 2);
    assert.deepEqual(r.applier.calls.map((c) => [c.db, c.quarantine?.reason ?? null]), [
      ['b.db', 'unknown'],
      ['a.db', 'diverged'],
    ]);
    await r.stop();
  });

  const broken: [string, Buffer[]][] = [
    ['unknown frame type', [u32(99), ltx('a.db', h.files[2]!)]],
    ['truncated LTX body (EOF inside a chunk)', [encodeFrame({ type: 'ltx', name: 'a.db', size: 0n }), ...encodeChunks(h.files[2]!.subarray(0, 60))]],
    ['LTX body cut at a chunk boundary (no terminator)', [encodeFrame({ type: 'ltx', name: 'a.db', size: 0n }), ...encodeChunks(h.files[2]!)]],
    ['an empty LTX body', [encodeFrame({ type: 'ltx', name: 'a.db', size: 0n }), CHUNK_TERMINATOR]],
    ['oversized name length', [u32(4), u32(0x40000000), Buffer.from('a.db')]],
    ['a truncated frame header', [u32(6), Buffer.alloc(5)]],
    ['an LTX body with bytes after its trailer', [ltx('a.db', Buffer.concat([h.files[2]!, Buffer.from('tail')]))]],
    ['an incremental file that does not continue the local position', [ltx('a.db', h.files[3]!)]],
    ['a database name that is a path', [ltx('../a.db', h.snapshot())]],
    ['the database name ..', [ltx('..', h.snapshot())]],
  ];
  for (const [name, bytes] of broken) {
    test(`${name}: stream dropped, nothing applied, reconnects`, async () => {
      const sp = await scriptedPrimary((n) => (n === 0 ? { bytes } : { bytes: [ready], hold: true }));
      cleanups.push(sp.close);
      const r = track(startReplica(sp.url, { local: new Map([['a.db', h.pos(1)]]) }));
      await waitFor('reconnected and ready', () => r.events.includes('ready'));
      assert.equal(sp.requests.length, 2);
      assert.deepEqual(r.applier.calls, []);
      assert.deepEqual(r.tmpFiles(), []);
      assert.ok(r.logs.some((l) => l.includes('failed')), r.logs.join('\n'));
      await r.stop();
    });
  }

  test('a silent stream (not even heartbeats) is dropped by the idle watchdog', async () => {
    const sp = await scriptedPrimary((n) => (n === 0 ? { bytes: [], hold: true } : { bytes: [ready], hold: true }));
    cleanups.push(sp.close);
    const r = track(startReplica(sp.url, { idleTimeoutMs: 200 }));
    await waitFor('ready after the idle drop', () => r.events.includes('ready'));
    assert.ok(r.logs.some((l) => l.includes('no data from the primary for 200 ms')), r.logs.join('\n'));
    await r.stop();
  });

  test('DropDB is ignored, HWM and heartbeats reach their callbacks, Handoff ends the connection with its lease id', async () => {
    const sp = await scriptedPrimary(() => ({
      bytes: [encodeFrame({ type: 'dropDB', name: 'gone.db' }), encodeFrame({ type: 'hwm', txid: 7n, name: 'a.db' }), ready, heartbeat(1234), encodeFrame({ type: 'handoff', leaseID: 'lease-1' })],
      hold: true,
    }));
    cleanups.push(sp.close);
    const events: string[] = [];
    const r = track(startReplica(sp.url, { onHWM: (db, txid) => events.push(`hwm ${db} ${txid}`) }));
    await waitFor('handoff logged', () => r.logs.some((l) => l.includes('lease id lease-1')));
    assert.deepEqual(events.slice(0, 1), ['hwm a.db 7']);
    assert.equal(r.timestamps[0], 1234);
    assert.ok(r.logs.some((l) => l.includes('DropDB frame for gone.db')));
    await r.stop();
  });

  test('the /stream request: Litefs-Features: snapshot-reason, Litefs-Id, the filter and the position map', async () => {
    const sp = await scriptedPrimary(() => ({ bytes: [ready], hold: true }));
    cleanups.push(sp.close);
    const local = new Map([['a.db', h.pos(2)]]);
    const r = track(startReplica(sp.url, { local, databases: ['a.db', 'b.db'] }));
    await waitFor('ready', () => r.events.includes('ready'));
    const req = sp.requests[0]!;
    assert.equal(req.headers['litefs-features'], 'snapshot-reason');
    assert.equal(req.headers['litefs-id'], '0123456789ABCDEF');
    assert.equal(req.headers[':path'], '/stream?filter=a.db%2Cb.db');
    assert.deepEqual(decodePosMap(req.body), local);
    await r.stop();
  });

  for (const name of ['stream-empty-posmap', 'stream-a-txid2', 'stream-caught-up', 'stream-drop-db', 'stream-filter-b']) {
    test(`the /stream request matches the recorded Go request ${name}, plus only Litefs-Features and Litefs-Cluster-Id`, async () => {
      const c = capture(name);
      const body = wireFile(c.files.request_body!);
      const sp = await scriptedPrimary(() => ({ bytes: [ready], hold: true }));
      cleanups.push(sp.close);
      const filter = name === 'stream-filter-b' ? ['b.db'] : undefined;
      const r = track(startReplica(sp.url, { local: decodePosMap(body), databases: filter }));
      await waitFor('ready', () => r.events.includes('ready'));
      const got = sp.requests[0]!;
      // curl's own headers aside; :authority is the address (varies), compared by presence.
      const want = new Map(c.request_headers.filter(([k]) => k !== 'user-agent' && k !== 'accept'));
      // Our documented additions (no epoch known here): Litefs-Features and the replica's Litefs-Cluster-Id.
      want.set('litefs-features', 'snapshot-reason');
      want.set('litefs-cluster-id', CLUSTER);
      const gotHeaders = new Map(Object.entries(got.headers).map(([k, v]) => [k, String(v)]));
      assert.deepEqual([...gotHeaders.keys()].sort(), [...want.keys()].sort());
      for (const [k, v] of want) if (k !== ':authority') assert.equal(gotHeaders.get(k), v, k);
      assert.deepEqual(got.body, body);
      await r.stop();
    });
  }

  test('a down primary: one log line per distinct failure, not one per attempt', async () => {
    const sp = await scriptedPrimary(() => ({ bytes: [] }));
    const url = sp.url;
    await sp.close();
    let attempts = 0;
    const r = track(startReplica(url, { positions: () => (attempts++, new Map()) }));
    await waitFor('five attempts', () => attempts >= 5);
    assert.equal(r.logs.length, 1, r.logs.join('\n'));
    assert.match(r.logs[0]!, /ECONNREFUSED/);
    await r.stop();
  });
});

describe('replica client pipeline: receiving ahead of a slow applier', () => {
  const h = history(12);
  const files = (from: number, to: number): Buffer[] => {
    const out: Buffer[] = [];
    for (let i = from; i <= to; i++) out.push(ltx('a.db', h.files[i]!));
    return out;
  };
  const txs = (from: number, to: number): string[] => {
    const out: string[] = [];
    for (let i = from; i <= to; i++) out.push(`ltx ${i}-${i}`);
    return out;
  };
  const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

  test('files are received while the first applies, up to the bound; applied once each, in order; Ready and the heartbeat act after them', async () => {
    const sp = await scriptedPrimary(() => ({ bytes: [...files(2, 9), ready, heartbeat(7)], hold: true }));
    cleanups.push(sp.close);
    const seen: string[] = [];
    const box: { r?: Replica } = {};
    const calls = (): number => box.r?.applier.calls.length ?? -1;
    const r = (box.r = track(
      startReplica(sp.url, {
        local: new Map([['a.db', h.pos(1)]]),
        pipeline: { maxFiles: 4, maxBytes: 64 << 20, maxBatch: 16 },
        onReady: () => seen.push(`ready after ${calls()}`),
        onPrimaryTimestamp: (ms) => seen.push(`timestamp ${ms} after ${calls()}`),
      }),
    ));
    const release = r.applier.pause();
    await waitFor('four files received while the first is applying', () => r.tmpFiles().length === 4);
    // The bound holds while the applier stays stuck (a check of a maximum, not of timing).
    await sleep(300);
    assert.equal(r.tmpFiles().length, 4);
    assert.deepEqual(r.applier.calls, []);
    assert.equal(seen.length, 0, 'no Ready before the files in front of it are applied');
    release();
    await waitFor('ready', () => seen.some((s) => s.startsWith('ready')));
    await waitFor('heartbeat', () => seen.some((s) => s.startsWith('timestamp 7')));
    assert.deepEqual(applied(r), txs(2, 9));
    assert.deepEqual(seen, ['ready after 8', 'timestamp 7 after 8']);
    assert.equal(r.applier.maxActive, 1, 'one apply at a time');
    // The three files that queued behind the stuck one went in one apply (between them: HWM frames).
    assert.deepEqual(r.applier.batches.slice(0, 2), [1, 3]);
    assert.deepEqual(r.applier.positions.get('a.db'), h.pos(9));
    assert.deepEqual(r.tmpFiles(), []);
    assert.equal(sp.requests.length, 1, 'no reconnect');
    await r.stop();
  });

  test('a repeat of the last queued file is skipped, not applied twice', async () => {
    const sp = await scriptedPrimary(() => ({ bytes: [...files(2, 3), ...files(3, 4), ready], hold: true }));
    cleanups.push(sp.close);
    const r = track(startReplica(sp.url, { local: new Map([['a.db', h.pos(1)]]) }));
    const release = r.applier.pause();
    await waitFor('three files queued', () => r.tmpFiles().length === 3);
    release();
    await waitFor('ready', () => r.events.includes('ready'));
    assert.deepEqual(applied(r), txs(2, 4));
    assert.deepEqual(r.tmpFiles(), []);
    assert.equal(sp.requests.length, 1);
    await r.stop();
  });

  test('an apply failure mid-queue drops the stream: the files behind it are removed, never applied; the replica reconnects from the real position', async () => {
    const sp = await scriptedPrimary((n) => (n === 0 ? { bytes: files(2, 7), hold: true } : { bytes: [...files(3, 7), ready], hold: true }));
    cleanups.push(sp.close);
    const r = track(startReplica(sp.url, { local: new Map([['a.db', h.pos(1)]]), pipeline: { maxFiles: 4, maxBytes: 64 << 20, maxBatch: 16 } }));
    r.applier.rejectTXID = 3n;
    const release = r.applier.pause();
    await waitFor('four files queued', () => r.tmpFiles().length === 4);
    release();
    await waitFor('reconnected and ready', () => r.events.includes('ready'));
    assert.deepEqual(applied(r), txs(2, 7), 'each applied once, in order');
    assert.ok(r.logs.some((l) => l.includes('injected apply failure of TXID 3')), r.logs.join('\n'));
    assert.equal(sp.requests.length, 2);
    assert.deepEqual(decodePosMap(sp.requests[1]!.body), new Map([['a.db', h.pos(2)]]), 'the second stream starts after the last applied file');
    assert.deepEqual(r.tmpFiles(), []);
    await r.stop();
  });

  test('a corrupt file behind queued ones drops the stream; nothing after it is applied and no temp file is left', async () => {
    const bad = Buffer.from(h.files[5]!);
    bad[150] = bad[150]! ^ 0xff;
    const sp = await scriptedPrimary((n) => (n === 0 ? { bytes: [...files(2, 4), ltx('a.db', bad), ...files(6, 7)], hold: true } : { bytes: [ready], hold: true }));
    cleanups.push(sp.close);
    const r = track(startReplica(sp.url, { local: new Map([['a.db', h.pos(1)]]) }));
    const release = r.applier.pause();
    // Receiving does not wait for the files' fsyncs, so the corrupt file may be read before
    // the first file reaches the applier (then nothing is handed over at all) or after.
    await waitFor('the first file applying, or the stream failed', () => r.applier.active === 1 || r.logs.some((l) => l.includes('failed')));
    await sleep(200);
    release();
    await waitFor('reconnected and ready', () => r.events.includes('ready'));
    // Nothing, only the file applying when the corrupt one was read, or all good files before it.
    const got = JSON.stringify(applied(r));
    assert.ok([[], txs(2, 2), txs(2, 4)].some((want) => JSON.stringify(want) === got), got);
    assert.deepEqual(r.tmpFiles(), []);
    assert.ok(r.logs.some((l) => l.includes('failed')), r.logs.join('\n'));
    await r.stop();
  });

  test('an incremental file that does not continue the queue\'s end waits for the queue, then is refused against the local position', async () => {
    const sp = await scriptedPrimary((n) => (n === 0 ? { bytes: [...files(2, 3), ...files(5, 5)], hold: true } : { bytes: [ready], hold: true }));
    cleanups.push(sp.close);
    const r = track(startReplica(sp.url, { local: new Map([['a.db', h.pos(1)]]) }));
    const release = r.applier.pause();
    await waitFor('three files received', () => r.tmpFiles().length === 3);
    release();
    await waitFor('reconnected and ready', () => r.events.includes('ready'));
    assert.deepEqual(applied(r), txs(2, 3));
    assert.ok(r.logs.some((l) => l.includes('needs position')), r.logs.join('\n'));
    assert.deepEqual(r.tmpFiles(), []);
    await r.stop();
  });

  test('Handoff ends the connection only after the queued files are applied', async () => {
    const sp = await scriptedPrimary(() => ({ bytes: [...files(2, 5), encodeFrame({ type: 'handoff', leaseID: 'lease-2' })], hold: true }));
    cleanups.push(sp.close);
    let atHandoff = -1;
    const box: { r?: Replica } = {};
    const r = (box.r = track(
      startReplica(sp.url, {
        local: new Map([['a.db', h.pos(1)]]),
        log: (line) => {
          if (line.includes('lease id lease-2') && atHandoff < 0) atHandoff = box.r?.applier.calls.length ?? -1;
        },
      }),
    ));
    const release = r.applier.pause();
    await waitFor('four files received', () => r.tmpFiles().length === 4);
    release();
    await waitFor('handoff', () => atHandoff >= 0);
    assert.equal(atHandoff, 4);
    assert.deepEqual(applied(r), txs(2, 5));
    await r.stop();
  });
});

describe('replica client: applied files\' timestamps', () => {
  test('told at most once per interval, the latest held back until the interval ends or the stream does', async () => {
    const h = history(4);
    const ts = (txid: number): number => Number(decodeBytes(h.files[txid]!).header.timestamp);
    const sp = await scriptedPrimary((n) =>
      n === 0 ? { bytes: [ready, ltx('a.db', h.files[2]!), ltx('a.db', h.files[3]!), ltx('a.db', h.files[4]!), encodeFrame({ type: 'end' })] } : { bytes: [], hold: true },
    );
    cleanups.push(sp.close);
    const r = track(startReplica(sp.url, { local: new Map([['a.db', h.pos(1)]]), timestampIntervalMs: 600_000 }));
    await waitFor('second connection', () => sp.requests.length === 2);
    assert.deepEqual(applied(r), ['ltx 2-2', 'ltx 3-3', 'ltx 4-4']);
    // The first at once, the third when the stream ended; the second was superseded.
    assert.deepEqual(r.timestamps, [ts(2), ts(4)]);
    await r.stop();
  });
});
