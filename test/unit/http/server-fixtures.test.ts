/**
 * Replays every recorded request of test/fixtures/wire/ against our server
 * and compares status, header names, order and values, and body bytes with
 * what Go LiteFS v0.5.11 answered, masking exactly what index.json marks as
 * varying. The store behind the server is the in-test FakeNode, set up with
 * the recorded node's state; the /stream captures are also replayed with the
 * real DataDirReplicationSource serving a data directory that holds the
 * recorded LTX and database files.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClientHttp2Session, OutgoingHttpHeaders } from 'node:http2';
import { Registry } from 'prom-client';
import { ApiServer } from '../../../src/http/server.js';
import { formatNodeID } from '../../../src/http/node-id.js';
import { FrameDecoder, type DecodedFrame, type LTXFrameHeader } from '../../../src/http/frames.js';
import { decodeBytes, type DecodeSummary } from '../../../src/ltx/index.js';
import { DataDirReplicationSource } from '../../../src/node/replication-source.js';
import { FakeNode, RECORDED_POS, dechunk } from './fake-node.js';
import { capture, masked, rawExchange, recordedLTX, wireFile, wireIndex, type Capture } from './wire-fixtures.js';
import { h2, h2session, parseHTTP1, rawHTTP1 } from './wire-client.js';
import { FileImageLocks } from '../node/file-image-locks.js';

// Same lengths as the recorded ids, different values: the masks must cover them.
const NODE_ID = 0x1122334455667788n;
const CLUSTER_ID = 'LFSC00112233445566AA';
const MASK = '<varies>';

interface Harness {
  node: FakeNode;
  server: ApiServer;
  port: number;
  session: ClientHttp2Session;
}

async function start(setup?: (node: FakeNode) => void): Promise<Harness> {
  const node = new FakeNode(NODE_ID, CLUSTER_ID);
  setup?.(node);
  const server = new ApiServer({ node, registry: new Registry() });
  const { port } = await server.listen(0, '127.0.0.1');
  return { node, server, port, session: h2session(port) };
}

async function stop(h: Harness): Promise<void> {
  h.session.close();
  await h.server.close();
}

function maskHeaders(headers: [string, string][], c: Capture): [string, string][] {
  const varying = new Set(c.header_masks.map(([name]) => name.toLowerCase()));
  return headers.map(([k, v]) => [k, varying.has(k.toLowerCase()) ? MASK : v]);
}

/** The request of a capture as raw HTTP/1.1 bytes. */
function http1Request(c: Capture): Buffer {
  const lines = c.request_headers.map(([k, v]) => (k === 'request-line' ? v : `${k}: ${v}`));
  const body = c.files.request_body ? wireFile(c.files.request_body) : Buffer.alloc(0);
  return Buffer.concat([Buffer.from(lines.join('\r\n') + '\r\n\r\n', 'latin1'), body]);
}

function h2Headers(c: Capture, override: Record<string, string> = {}): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [k, v] of c.request_headers) {
    if (k === ':authority' || k === 'content-length') continue;
    out[k] = v;
  }
  return { ...out, ...override };
}

function expectedBody(c: Capture): Buffer {
  return c.files.body ? wireFile(c.files.body) : Buffer.alloc(0);
}

/** Status, headers and body of a capture replayed on `h`, masked. */
async function replay(h: Harness, c: Capture, override: Record<string, string> = {}): Promise<void> {
  let status: string;
  let headers: [string, string][];
  let body: Buffer;
  if (c.protocol === 'HTTP/1.1') {
    const res = parseHTTP1(await rawHTTP1(h.port, http1Request(c)));
    assert.ok(res.complete, `${c.name}: incomplete response`);
    status = res.statusLine;
    headers = res.headers;
    body = res.body;
  } else {
    const reqBody = c.files.request_body ? wireFile(c.files.request_body) : undefined;
    const res = await h2(h.session, h2Headers(c, override), reqBody);
    status = `HTTP/2 ${res.status}`;
    headers = res.headers;
    body = res.body;
  }
  assert.equal(status, c.response_status, `${c.name}: status`);
  assert.deepEqual(maskHeaders(headers, c), maskHeaders(c.response_headers, c), `${c.name}: headers`);
  assert.deepEqual(masked(body, c.body_masks), masked(expectedBody(c), c.body_masks), `${c.name}: body`);
}

/** Byte length of a recorded stream through its first Heartbeat frame. */
function throughFirstHeartbeat(c: Capture): number {
  const hb = c.frames!.find((f) => f.kind === 'Heartbeat')!;
  return hb.offset + hb.length;
}

/** Captures taken after statement 6 (a.db at TXID 4), per the README's capture order. */
const AFTER_STATEMENT_6 = new Set(['stream-a-txid1-catchup', 'stream-no-id', 'stream-a-ahead', 'handoff-not-connected', 'handoff-static-unsupported']);

describe('replay of recorded requests (Go LiteFS v0.5.11 fixtures)', () => {
  let h: Harness;
  let h4: Harness; // a.db at TXID 4
  before(async () => {
    h = await start();
    h4 = await start((n) => n.txids.set('a.db', 4));
  });
  after(async () => {
    await stop(h);
    await stop(h4);
  });

  const simple = wireIndex.captures.filter(
    (c) => !c.frames && !['events', 'metrics', 'handoff-static-unsupported'].includes(c.name),
  );
  for (const c of simple) {
    test(`${c.name}: ${c.description}`, async () => {
      // The self-connect request carries the primary's own id, which is ours in this run.
      const override: Record<string, string> = c.name === 'stream-self-id' ? { 'litefs-id': formatNodeID(NODE_ID) } : {};
      await replay(AFTER_STATEMENT_6.has(c.name) ? h4 : h, c, override);
    });
  }

  test('handoff-static-unsupported: POST /handoff while that replica streams', async () => {
    const c = capture('handoff-static-unsupported');
    const streamReq = capture('stream-caught-up');
    // Hold a stream from replica 0123456789ABCDEF open while the handoff is asked for.
    const holder = h.session.request(h2Headers(streamReq), { endStream: false });
    holder.end(wireFile(streamReq.files.request_body!));
    await new Promise<void>((resolve) => holder.once('data', () => resolve()));
    try {
      await replay(h, c);
    } finally {
      holder.close();
    }
  });

  for (const c of wireIndex.captures.filter((x) => x.frames && x.name !== 'stream-live-tx')) {
    test(`${c.name}: ${c.description} (through the first heartbeat)`, async () => {
      const hh = AFTER_STATEMENT_6.has(c.name) ? h4 : h;
      const n = throughFirstHeartbeat(c);
      const res = await h2(hh.session, h2Headers(c), wireFile(c.files.request_body!), (b) => b.length >= n);
      assert.equal(`HTTP/2 ${res.status}`, c.response_status);
      assert.deepEqual(maskHeaders(res.headers, c), maskHeaders(c.response_headers, c), 'headers');
      const want = wireFile(c.files.body!).subarray(0, n);
      assert.deepEqual(masked(res.body.subarray(0, n), c.body_masks), masked(want, c.body_masks), 'body');
    });
  }

  test('stream-live-tx: a commit while streaming sends LTX + HWM at once, then heartbeats resume a second later', async () => {
    const c = capture('stream-live-tx');
    const hh = await start();
    try {
      const hwmEnd = c.frames![3]!.offset + c.frames![3]!.length;
      const sent: number[] = [];
      const res = h2(hh.session, h2Headers(c), wireFile(c.files.request_body!), (b) => {
        sent.push(Date.now());
        if (b.length === 16) {
          // Statement 6: a.db commits TXID 4 while the stream is idle.
          hh.node.txids.set('a.db', 4);
          hh.node.notify(['a.db']);
        }
        return b.length >= hwmEnd + 12;
      });
      const got = await res;
      const want = wireFile(c.files.body!).subarray(0, hwmEnd + 12);
      assert.deepEqual(masked(got.body.subarray(0, hwmEnd + 12), c.body_masks), masked(want, c.body_masks));
      const heartbeatGap = sent[sent.length - 1]! - sent[sent.length - 2]!;
      assert.ok(heartbeatGap >= 900 && heartbeatGap <= 1300, `heartbeat ${heartbeatGap} ms after the pushed LTX`);
    } finally {
      await stop(hh);
    }
  });

  test('events: init, then the tx event of a commit, as NDJSON over chunked HTTP/1.1', async () => {
    const c = capture('events');
    const pending = rawHTTP1(h.port, http1Request(c), {
      done: (b) => parseHTTP1(b).body.length >= wireFile(c.files.body!).length,
      settleMs: 100,
    });
    await new Promise((r) => setTimeout(r, 100));
    for (const sub of h.node.eventSubs) {
      sub.push({
        type: 'tx',
        db: 'a.db',
        data: { txID: 4n, postApplyChecksum: 0x97aab38f46fe2e67n, pageSize: 4096, commit: 2, timestamp: 1795468580387 },
      });
    }
    const res = parseHTTP1(await pending);
    assert.equal(res.statusLine, c.response_status);
    // The stream never ends, so the header list lacks only Go's final chunk; the recorded one is the same.
    assert.deepEqual(maskHeaders(res.headers, c), maskHeaders(c.response_headers, c));
    // Same timestamp as the recording, so even the masked range matches.
    assert.deepEqual(res.body, wireFile(c.files.body!));
  });

  test('metrics: Prometheus text with the recorded headers and no Litefs headers', async () => {
    const c = capture('metrics');
    const res = parseHTTP1(await rawHTTP1(h.port, http1Request(c)));
    assert.equal(res.statusLine, c.response_status);
    assert.deepEqual(maskHeaders(res.headers, c), maskHeaders(c.response_headers, c));
    assert.match(res.body.toString(), /^# HELP litefs_http_stream_count /m);
    assert.match(res.body.toString(), /^# TYPE litefs_http_frame_send_count counter$/m);
  });
});

describe('raw HTTP/1.1 exchanges, byte for byte', () => {
  let h4: Harness;
  before(async () => {
    h4 = await start((n) => n.txids.set('a.db', 4));
  });
  after(async () => stop(h4));

  for (const x of wireIndex.raw_http1) {
    test(`${x.name}: same bytes as Go apart from the masked ranges`, async () => {
      const want = wireFile(x.response_file);
      const got = await rawHTTP1(h4.port, wireFile(x.request_file), {
        done: (b) => b.length >= want.length,
        settleMs: 150,
      });
      assert.equal(got.length, want.length, `${x.name}: ${got.toString('latin1').slice(0, 400)}`);
      assert.deepEqual(masked(got, x.masks).toString('latin1'), masked(want, x.masks).toString('latin1'));
    });
  }

  test('the first bytes may arrive one at a time (protocol detection waits for enough bytes)', async () => {
    const x = rawExchange('promote');
    const want = wireFile(x.response_file);
    const got = await rawHTTP1(h4.port, wireFile(x.request_file), { trickle: true, done: (b) => b.length >= want.length });
    assert.deepEqual(masked(got, x.masks), masked(want, x.masks));
  });
});

// --- The same /stream captures served from a data directory by DataDirReplicationSource ---

/**
 * A data directory with what the recorded node held: its LTX files (copied
 * unchanged) and database files (the /export bodies). a.db at `aTXID`, b.db at 3.
 */
function recordedDataDir(aTXID: 3 | 4): string {
  const dataDir = mkdtempSync(join(tmpdir(), 'wire-data-'));
  const put = (db: string, last: number, image: Buffer): void => {
    const dir = join(dataDir, 'dbs', db);
    mkdirSync(join(dir, 'ltx'), { recursive: true });
    for (let t = 1; t <= last; t++) putLTX(dataDir, db, t);
    writeFileSync(join(dir, 'database'), image);
  };
  put('a.db', aTXID, aTXID === 3 ? wireFile('export-a.db.body.bin') : dechunk(wireFile('http1-export-a.db.resp.bin')));
  put('b.db', 3, wireFile('export-b.db.body.bin'));
  return dataDir;
}

function putLTX(dataDir: string, db: string, txid: number): void {
  const t = txid.toString(16).padStart(16, '0');
  writeFileSync(join(dataDir, 'dbs', db, 'ltx', `${t}-${t}.ltx`), recordedLTX(db, txid));
}

interface DataDirHarness extends Harness {
  dataDir: string;
  source: DataDirReplicationSource;
}

async function startDataDir(aTXID: 3 | 4, prepare?: (dataDir: string) => void): Promise<DataDirHarness> {
  const dataDir = recordedDataDir(aTXID);
  prepare?.(dataDir);
  const source = new DataDirReplicationSource({ dataDir, nodeID: NODE_ID, compress: true, images: new FileImageLocks(dataDir) });
  const node = new FakeNode(NODE_ID, CLUSTER_ID, undefined, source);
  const server = new ApiServer({ node, registry: new Registry() });
  const { port } = await server.listen(0, '127.0.0.1');
  return { node, server, port, session: h2session(port), dataDir, source };
}

async function stopDataDir(h: DataDirHarness): Promise<void> {
  await stop(h);
  h.source.close();
  rmSync(h.dataDir, { recursive: true, force: true });
}

/** The complete frames at the start of a stream body (a cut stream may end inside one). */
function framesOf(body: Buffer): DecodedFrame[] {
  const frames: DecodedFrame[] = [];
  let ltx: { header: LTXFrameHeader; parts: Buffer[]; chunks: number[] } | undefined;
  new FrameDecoder().push(body, (ev) => {
    if (ev.kind === 'frame') {
      if (ev.frame.type === 'ltx') ltx = { header: ev.frame, parts: [], chunks: [] };
      else frames.push(ev.frame);
    } else if (ev.kind === 'ltx-chunk') ltx!.chunks.push(ev.length);
    else if (ev.kind === 'ltx-data') ltx!.parts.push(Buffer.from(ev.data));
    else {
      frames.push({ ...ltx!.header, payload: Buffer.concat(ltx!.parts), chunks: ltx!.chunks });
      ltx = undefined;
    }
  });
  return frames;
}

/** Frames up to and including the `n`th heartbeat. */
function throughHeartbeat(frames: DecodedFrame[], n = 1): DecodedFrame[] | undefined {
  let seen = 0;
  const i = frames.findIndex((f) => f.type === 'heartbeat' && ++seen === n);
  return i < 0 ? undefined : frames.slice(0, i + 1);
}

function decodeLTX(payload: Buffer): DecodeSummary & { pages: [number, Buffer][] } {
  const pages: [number, Buffer][] = [];
  const summary = decodeBytes(payload, { onPage: (pgno, data) => pages.push([pgno, Buffer.from(data)]) });
  return { ...summary, pages };
}

/**
 * A snapshot we made against one Go made. Our LZ4 block compressor (lz4js)
 * does not emit pierrec's exact block bytes, so the compressed block (and
 * with it the file checksum) may differ; everything else must agree: the
 * chunk layout, the LZ4 frame header, every header field but the time and
 * node id, the pages and the post-apply checksum.
 */
function assertSameSnapshot(got: DecodedFrame, want: DecodedFrame & { type: 'ltx' }, startedAt: number, what: string): void {
  assert.equal(got.type, 'ltx', what);
  if (got.type !== 'ltx') return;
  assert.equal(got.name, want.name, what);
  const layout = (chunks: readonly number[]): (number | string)[] => chunks.map((n, i) => (i === 3 ? 'block' : n));
  assert.deepEqual(layout(got.chunks), layout(want.chunks), `${what}: chunk layout`);
  assert.ok(got.payload.subarray(100, 107).equals(want.payload.subarray(100, 107)), `${what}: LZ4 frame header`);
  assert.equal(got.payload.readUInt32LE(107), got.chunks[3], `${what}: LZ4 block size`);
  const g = decodeLTX(got.payload);
  const w = decodeLTX(want.payload);
  assert.deepEqual({ ...g.header, timestamp: 0n, nodeID: 0n }, { ...w.header, timestamp: 0n, nodeID: 0n }, `${what}: header`);
  assert.equal(g.header.nodeID, NODE_ID, `${what}: node id`);
  assert.ok(g.header.timestamp >= BigInt(startedAt) && g.header.timestamp <= BigInt(Date.now()), `${what}: timestamp`);
  assert.deepEqual(g.pages, w.pages, `${what}: pages`);
  assert.equal(g.trailer.postApplyChecksum, w.trailer.postApplyChecksum, `${what}: post-apply checksum`);
}

/** Frame by frame: heartbeats by type only (time), snapshots as above, everything else byte for byte. */
function assertSameFrames(got: DecodedFrame[], want: DecodedFrame[], startedAt: number, name: string): void {
  const kinds = (fs: DecodedFrame[]): string[] => fs.map((f) => `${f.type}${'name' in f ? ' ' + f.name : ''}`);
  assert.deepEqual(kinds(got), kinds(want), `${name}: frames`);
  want.forEach((w, i) => {
    const g = got[i]!;
    const what = `${name} frame ${i}`;
    if (w.type === 'heartbeat') return;
    if (w.type === 'ltx' && w.payload.readBigUInt64BE(16) === 1n) return assertSameSnapshot(g, w, startedAt, what);
    assert.deepEqual(g, w, what);
  });
}

describe('replay of recorded streams from a data directory (DataDirReplicationSource)', () => {
  let h: DataDirHarness;
  let h4: DataDirHarness; // a.db at TXID 4
  before(async () => {
    h = await startDataDir(3);
    h4 = await startDataDir(4);
  });
  after(async () => {
    await stopDataDir(h);
    await stopDataDir(h4);
  });

  for (const c of wireIndex.captures.filter((x) => x.frames && x.name !== 'stream-live-tx')) {
    test(`${c.name}: ${c.description} (through the first heartbeat)`, async () => {
      const hh = AFTER_STATEMENT_6.has(c.name) ? h4 : h;
      const startedAt = Date.now();
      const res = await h2(hh.session, h2Headers(c), wireFile(c.files.request_body!), (b) => throughHeartbeat(framesOf(b)) !== undefined);
      assert.equal(`HTTP/2 ${res.status}`, c.response_status);
      assert.deepEqual(maskHeaders(res.headers, c), maskHeaders(c.response_headers, c), 'headers');
      const want = throughHeartbeat(framesOf(wireFile(c.files.body!)))!;
      assertSameFrames(throughHeartbeat(framesOf(res.body))!, want, startedAt, c.name);
    });
  }

  test('stream-live-tx: a commit (LTX file + tx event) while streaming sends the recorded LTX + HWM, then a heartbeat', async () => {
    const c = capture('stream-live-tx');
    const hh = await startDataDir(3);
    try {
      let committed = false;
      const res = await h2(hh.session, h2Headers(c), wireFile(c.files.request_body!), (b) => {
        const frames = framesOf(b);
        if (!committed && throughHeartbeat(frames) !== undefined) {
          // Statement 6: the store makes a.db's TXID 4 durable, then reports it.
          committed = true;
          putLTX(hh.dataDir, 'a.db', 4);
          writeFileSync(join(hh.dataDir, 'dbs', 'a.db', 'database'), dechunk(wireFile('http1-export-a.db.resp.bin')));
          hh.source.onTx('a.db', { txid: 4n, postApplyChecksum: RECORDED_POS['a.db']![4]! });
        }
        return throughHeartbeat(frames, 2) !== undefined;
      });
      const want = throughHeartbeat(framesOf(wireFile(c.files.body!)), 2)!;
      assertSameFrames(throughHeartbeat(framesOf(res.body), 2)!, want, 0, c.name);
    } finally {
      await stopDataDir(hh);
    }
  });

  const reasonCases: [string, string, (DecodedFrame | string)[], ((dataDir: string) => void)?][] = [
    ['stream-a-wrong-checksum', 'a.db diverged, b.db empty', [{ type: 'snapshotReason', name: 'a.db', reason: 'diverged' }, 'ltx', { type: 'snapshotReason', name: 'b.db', reason: 'empty' }, 'ltx']],
    ['stream-a-ahead', 'a.db ahead', [{ type: 'snapshotReason', name: 'a.db', reason: 'ahead' }, 'ltx']],
    [
      'stream-a-txid1-catchup',
      'a.db behind (LTX 2 removed by retention)',
      [{ type: 'snapshotReason', name: 'a.db', reason: 'behind' }, 'ltx'],
      (dataDir) => rmSync(join(dataDir, 'dbs', 'a.db', 'ltx', '0000000000000002-0000000000000002.ltx')),
    ],
  ];
  for (const [name, what, expected, prepare] of reasonCases) {
    test(`${name} with Litefs-Features: snapshot-reason: ${what}`, async () => {
      const c = capture(name);
      const hh = await startDataDir(AFTER_STATEMENT_6.has(name) ? 4 : 3, prepare);
      try {
        const headers = h2Headers(c, { 'litefs-features': 'other, Snapshot-Reason' });
        const res = await h2(hh.session, headers, wireFile(c.files.request_body!), (b) => throughHeartbeat(framesOf(b)) !== undefined);
        const frames = throughHeartbeat(framesOf(res.body))!;
        const burst = frames.slice(0, expected.length).map((f, i) => (typeof expected[i] === 'string' ? f.type : f));
        assert.deepEqual(burst, expected);
        assert.deepEqual(frames.slice(expected.length).map((f) => f.type), ['ready', 'heartbeat']);
      } finally {
        await stopDataDir(hh);
      }
    });
  }
});
