/**
 * The h2c client: its requests carry the bodies and headers the recorded
 * requests carry (checked with a bare HTTP/2 server that records what
 * arrives), and it works end to end against our server backed by the
 * in-test FakeNode.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Http2Server, type IncomingHttpHeaders } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { ApiClientError, NodeClient } from '../../../src/http/client.js';
import { decodePosMap } from '../../../src/http/posmap.js';
import { ApiServer } from '../../../src/http/server.js';
import { FakeNode, RECORDED_POS } from './fake-node.js';
import { capture, recordedLTX, wireFile } from './wire-fixtures.js';

const REPLICA_ID = 0x0123456789abcdefn;

interface Seen {
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** A bare h2c server that records each request and answers 200 with an empty body. */
async function recorder(): Promise<{ server: Http2Server; url: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = createServer();
  server.on('stream', (stream, headers) => {
    const parts: Buffer[] = [];
    stream.on('data', (d: Buffer) => parts.push(d));
    stream.on('end', () => {
      seen.push({ headers, body: Buffer.concat(parts) });
      stream.respond({ ':status': 200 });
      stream.end(headers[':path'] === '/halt?id=7&name=a.db' && headers[':method'] === 'POST' ? '{"id":7,"pos":{"TXID":"0000000000000001","PostApplyChecksum":"0000000000000000"}}\n' : '');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/ignored/path?x=1`, seen };
}

/** The recorded request headers a LiteFS client must send too (curl's own user-agent/accept aside). */
function recordedProtocolHeaders(name: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of capture(name).request_headers) {
    if (['user-agent', 'accept', ':authority', ':scheme'].includes(k)) continue;
    out[k] = v;
  }
  return out;
}

function pick(h: IncomingHttpHeaders, names: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const n of names) if (h[n] !== undefined) out[n] = String(h[n]);
  return out;
}

describe('client requests match the recorded requests', () => {
  let rec: Awaited<ReturnType<typeof recorder>>;
  let client: NodeClient;
  before(async () => {
    rec = await recorder();
    client = new NodeClient(rec.url, { nodeID: REPLICA_ID });
  });
  after(() => {
    client.close();
    rec.server.close();
  });

  for (const name of ['stream-a-txid2', 'stream-drop-db', 'stream-empty-posmap', 'stream-caught-up', 'stream-filter-b']) {
    test(`${name}: same method, path, Litefs-Id, content-length and body bytes`, async () => {
      const want = recordedProtocolHeaders(name);
      const body = wireFile(capture(name).files.request_body!);
      const filter = name === 'stream-filter-b' ? ['b.db'] : [];
      const s = await client.stream(decodePosMap(body), filter);
      s.close();
      const got = rec.seen[rec.seen.length - 1]!;
      assert.deepEqual(pick(got.headers, Object.keys(want)), want);
      assert.deepEqual(got.body, body);
    });
  }

  test('stream: Litefs-Features only when features are given, comma-joined; never on other requests', async () => {
    const withFeatures = new NodeClient(rec.url, { nodeID: REPLICA_ID, features: ['snapshot-reason', 'x'] });
    (await withFeatures.stream(new Map())).close();
    await withFeatures.info().catch(() => {});
    withFeatures.close();
    const [stream, info] = rec.seen.slice(-2);
    assert.equal(stream!.headers['litefs-features'], 'snapshot-reason,x');
    assert.equal(info!.headers['litefs-features'], undefined);
    (await client.stream(new Map())).close();
    assert.equal(rec.seen.at(-1)!.headers['litefs-features'], undefined);
  });

  test('halt, unhalt, tx, handoff, import, export, info, promote: paths, query order and Litefs-Id as Go LiteFS sends them', async () => {
    await client.acquireHaltLock('a.db', 7n);
    await client.releaseHaltLock('a.db', 7n);
    await client.commit('a.db', 7n, Buffer.from('LTX1'));
    await client.handoff(REPLICA_ID);
    await client.import('a b.db', (async function* () {
      yield Buffer.from('SQLite');
      yield Buffer.from(' format 3');
    })());
    for await (const _ of await client.export('a.db')) void _;
    await client.promote();
    const lines = rec.seen.slice(-7).map((s) => `${s.headers[':method']} ${s.headers[':path']} ${s.headers['litefs-id'] ?? '-'} ${s.body.toString()}`);
    assert.deepEqual(lines, [
      'POST /halt?id=7&name=a.db 0123456789ABCDEF ',
      'DELETE /halt?id=7&name=a.db 0123456789ABCDEF ',
      'POST /tx?lockID=7&name=a.db 0123456789ABCDEF LTX1',
      'POST /handoff?nodeID=0123456789ABCDEF - ',
      'POST /import?name=a+b.db - SQLite format 3',
      'GET /export?name=a.db - ',
      'POST /promote - ',
    ]);
    // The recorded failing /tx request carried the replica's id the same way.
    assert.equal(recordedProtocolHeaders('tx-db-not-found')['Litefs-Id'], '0123456789ABCDEF');
  });

  test('addition: Litefs-Cluster-Id on every request once the node has an id (read at each request), never while it has none', async () => {
    let id = '';
    const c = new NodeClient(rec.url, { nodeID: REPLICA_ID, clusterID: () => id });
    try {
      const from = rec.seen.length;
      (await c.stream(new Map())).close();
      await c.info().catch(() => {});
      id = 'LFSC0000000000000001';
      (await c.stream(new Map())).close();
      await c.info().catch(() => {});
      await c.acquireHaltLock('a.db', 7n);
      await c.releaseHaltLock('a.db', 7n);
      await c.commit('a.db', 7n, Buffer.from('LTX1'));
      await c.handoff(REPLICA_ID);
      await c.promote();
      await c.import('a.db', Buffer.from('x'));
      for await (const _ of await c.export('a.db')) void _;
      const sent = rec.seen.slice(from).map((r) => `${r.headers[':method']} ${r.headers[':path']} ${r.headers['litefs-cluster-id'] ?? '-'}`);
      assert.deepEqual(sent, [
        'POST /stream -',
        'GET /info -',
        'POST /stream LFSC0000000000000001',
        'GET /info LFSC0000000000000001',
        'POST /halt?id=7&name=a.db LFSC0000000000000001',
        'DELETE /halt?id=7&name=a.db LFSC0000000000000001',
        'POST /tx?lockID=7&name=a.db LFSC0000000000000001',
        'POST /handoff?nodeID=0123456789ABCDEF LFSC0000000000000001',
        'POST /promote LFSC0000000000000001',
        'POST /import?name=a.db LFSC0000000000000001',
        'GET /export?name=a.db LFSC0000000000000001',
      ]);
    } finally {
      c.close();
    }
  });
});

describe('client against our server', () => {
  let node: FakeNode;
  let server: ApiServer;
  let client: NodeClient;
  before(async () => {
    node = new FakeNode(0x1122334455667788n, 'LFSC00112233445566AA');
    node.txids.set('a.db', 4);
    node.epochValue = 12n;
    server = new ApiServer({ node, registry: new Registry() });
    const { port } = await server.listen(0, '127.0.0.1');
    client = new NodeClient(`http://127.0.0.1:${port}`, { nodeID: REPLICA_ID, epoch: () => 11n });
  });
  after(async () => {
    client.close();
    await server.close();
  });

  test('stream: catch-up from a.db TXID 1 gives the recorded LTX files, Ready and a heartbeat, with the peer headers', async () => {
    const positions = new Map([
      ['a.db', { txid: 1n, postApplyChecksum: RECORDED_POS['a.db']![1]! }],
      ['b.db', { txid: 3n, postApplyChecksum: RECORDED_POS['b.db']![3]! }],
    ]);
    const s = await client.stream(positions);
    assert.deepEqual(s.peer, { nodeID: 0x1122334455667788n, clusterID: 'LFSC00112233445566AA', epoch: 12n });
    const types: string[] = [];
    const payloads: Buffer[] = [];
    for await (const f of s.frames) {
      types.push(f.type);
      if (f.type === 'ltx') {
        const parts: Buffer[] = [];
        for await (const p of f.body) parts.push(Buffer.from(p));
        payloads.push(Buffer.concat(parts));
      }
      if (f.type === 'heartbeat') break;
    }
    s.close();
    assert.deepEqual(types, ['ltx', 'hwm', 'ltx', 'hwm', 'ltx', 'hwm', 'ready', 'heartbeat']);
    assert.deepEqual(payloads, [recordedLTX('a.db', 2), recordedLTX('a.db', 3), recordedLTX('a.db', 4)]);
    assert.equal(node.subscriptions.at(-1)!.replicaID, REPLICA_ID);
  });

  test('info, export and the error statuses come back as values and typed errors', async () => {
    const info = await client.info();
    assert.deepEqual(info, {
      clusterID: 'LFSC00112233445566AA',
      isPrimary: true,
      candidate: true,
      path: '/var/lib/litefs-primary',
      primaryHostname: 'cap-primary',
    });
    const parts: Buffer[] = [];
    for await (const p of await client.export('b.db')) parts.push(p);
    assert.deepEqual(Buffer.concat(parts), wireFile('export-b.db.body.bin'));
    await assert.rejects(client.export('nope.db'), (e: unknown) => e instanceof ApiClientError && e.status === 404 && e.message === 'database not found');
    await assert.rejects(client.import('a.db', Buffer.alloc(0)), { status: 500, message: 'read database header: EOF' });
    await assert.rejects(client.handoff(0x42n), { status: 500, message: 'cannot handoff: target node is not currently connected' });
    const self = new NodeClient(client.origin, { nodeID: 0x1122334455667788n });
    await assert.rejects(self.stream(new Map()), { status: 400, message: 'cannot connect to self' });
    self.close();
    assert.deepEqual(await client.acquireHaltLock('b.db', 3n), {
      id: 3n,
      pos: { txid: 3n, postApplyChecksum: 0xd37a7dd1148a75bcn },
      expires: Date.parse('2026-11-23T21:17:01.123Z'),
    });
  });

  test('addition: our server refuses a client of another cluster with 412; the same cluster is served', async () => {
    const other = new NodeClient(client.origin, { nodeID: REPLICA_ID, clusterID: () => 'LFSC0000000000000001' });
    const same = new NodeClient(client.origin, { nodeID: REPLICA_ID, clusterID: () => 'LFSC00112233445566AA' });
    try {
      const message = 'cluster id mismatch: this node is LFSC00112233445566AA, the request is from LFSC0000000000000001';
      await assert.rejects(other.stream(new Map()), { status: 412, message });
      await assert.rejects(other.info(), { status: 412, message });
      assert.equal((await same.info()).clusterID, 'LFSC00112233445566AA');
    } finally {
      other.close();
      same.close();
    }
  });

  test('an aborted signal cancels a request', async () => {
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(client.info(ac.signal), { name: 'AbortError' });
  });
});
