/**
 * Replays every recorded request of test/fixtures/wire/ against our server
 * and compares status, header names, order and values, and body bytes with
 * what Go LiteFS v0.5.11 answered, masking exactly what index.json marks as
 * varying. The store behind the server is the in-test FakeNode, set up with
 * the recorded node's state.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ClientHttp2Session, OutgoingHttpHeaders } from 'node:http2';
import { Registry } from 'prom-client';
import { ApiServer } from '../../../src/http/server.js';
import { formatNodeID } from '../../../src/http/node-id.js';
import { FakeNode } from './fake-node.js';
import { capture, masked, rawExchange, wireFile, wireIndex, type Capture } from './wire-fixtures.js';
import { h2, h2session, parseHTTP1, rawHTTP1 } from './wire-client.js';

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
