/**
 * The API server's own behaviour beyond the recordings: every endpoint's
 * validation and error bodies, the server staying usable after bad requests,
 * stream endings (server close, lost lease, replica gone), and our additions.
 * The store is the in-test FakeNode.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as netConnect } from 'node:net';
import { Registry } from 'prom-client';
import { ApiServer } from '../../../src/http/server.js';
import { formatNodeID } from '../../../src/http/node-id.js';
import { decodeFrames } from '../../../src/http/frames.js';
import { encodePosMap } from '../../../src/http/posmap.js';
import { FakeNode, RECORDED_POS } from './fake-node.js';
import { h2, h2session, parseHTTP1, rawHTTP1 } from './wire-client.js';

const NODE_ID = 0x1122334455667788n;
const REPLICA = '0123456789ABCDEF';
const SELF = formatNodeID(NODE_ID);

async function start(setup?: (n: FakeNode) => void) {
  const node = new FakeNode(NODE_ID, 'LFSC00112233445566AA');
  setup?.(node);
  const registry = new Registry();
  const server = new ApiServer({ node, registry });
  const { port } = await server.listen(0, '127.0.0.1');
  const session = h2session(port);
  return {
    node,
    server,
    port,
    session,
    registry,
    stop: async () => {
      session.close();
      await server.close();
    },
  };
}

/** Request over HTTP/1.1; returns status code and body text. */
async function h1(port: number, method: string, target: string, headers: Record<string, string> = {}, body = '') {
  const head = [`${method} ${target} HTTP/1.1`, 'Host: 127.0.0.1'];
  for (const [k, v] of Object.entries(headers)) head.push(`${k}: ${v}`);
  if (body !== '' || method === 'POST') head.push(`Content-Length: ${Buffer.byteLength(body)}`);
  const raw = await rawHTTP1(port, Buffer.from(head.join('\r\n') + '\r\n\r\n' + body), { settleMs: 5 });
  const res = parseHTTP1(raw);
  return { status: Number(res.statusLine.split(' ')[1]), body: res.body.toString(), headers: res.headers };
}

const caughtUp = encodePosMap(
  new Map([
    ['a.db', { txid: 3n, postApplyChecksum: RECORDED_POS['a.db']![3]! }],
    ['b.db', { txid: 3n, postApplyChecksum: RECORDED_POS['b.db']![3]! }],
  ]),
);

describe('bad requests get LiteFS status codes and plain-text bodies', () => {
  let s: Awaited<ReturnType<typeof start>>;
  before(async () => {
    s = await start();
  });
  after(async () => s.stop());

  const cases: [string, string, Record<string, string>, string, number, string][] = [
    // method, target, headers, body, status, body
    ['PUT', '/info', {}, '', 405, 'method not allowed\n'],
    ['DELETE', '/export?name=a.db', {}, '', 405, 'method not allowed\n'],
    ['GET', '/halt?name=a.db&id=1', {}, '', 405, 'method not allowed\n'],
    ['GET', '/handoff', {}, '', 405, 'method not allowed\n'],
    ['GET', '/import?name=a.db', {}, '', 405, 'method not allowed\n'],
    ['GET', '/promote', {}, '', 405, 'method not allowed\n'],
    ['GET', '/tx?name=a.db', {}, '', 405, 'method not allowed\n'],
    ['POST', '/events', {}, '', 405, 'method not allowed\n'],
    ['GET', '/stream', {}, '', 405, 'method not allowed\n'],
    ['GET', '/', {}, '', 404, '404 page not found\n'],
    ['GET', '/info/', {}, '', 404, '404 page not found\n'],
    ['GET', '//info', {}, '', 404, '404 page not found\n'],
    ['GET', '/debug/vars', {}, '', 404, '404 page not found\n'],
    ['POST', '/stream', { 'Litefs-Id': REPLICA }, 'x', 426, 'Upgrade to HTTP/2 required\n'],
    ['GET', '/export', {}, '', 400, 'name required\n'],
    ['GET', '/export?name=', {}, '', 400, 'name required\n'],
    ['GET', '/export?name=nope.db', {}, '', 404, 'database not found\n'],
    ['POST', '/import', {}, '', 400, 'name required\n'],
    ['POST', '/import?name=a.db', {}, '', 500, 'read database header: EOF\n'],
    ['POST', '/halt?name=a.db', {}, '', 400, 'invalid id: ""\n'],
    ['POST', '/halt?name=a.db&id=12x', {}, '', 400, 'invalid id: "12x"\n'],
    ['POST', '/halt?name=a.db&id=9223372036854775808', {}, '', 400, 'invalid id: "9223372036854775808"\n'],
    ['POST', '/halt?name=a.db&id=%22%0A', {}, '', 400, 'invalid id: "\\"\\n"\n'],
    ['POST', '/halt?name=a.db&id=5', { 'Litefs-Id': SELF }, '', 400, 'cannot remotely halt self\n'],
    ['POST', '/halt?name=a.db&id=0', { 'Litefs-Id': REPLICA }, '', 500, 'acquire halt lock: invalid lock id\n'],
    ['DELETE', '/halt?name=a.db&id=x', {}, '', 400, 'invalid id: "x"\n'],
    ['DELETE', '/halt?name=a.db&id=5', { 'Litefs-Id': SELF.toLowerCase() }, '', 400, 'cannot remotely unhalt self\n'],
    // Deliberate difference: LiteFS v0.5.11 dereferences a nil DB here (ref §15); we answer the 404 its code intends.
    ['DELETE', '/halt?name=nope.db&id=5', { 'Litefs-Id': REPLICA }, '', 404, 'database not found: "nope.db"\n'],
    ['POST', '/tx?name=a.db&lockID=1', { 'Litefs-Id': SELF }, 'x', 400, 'cannot remotely halt self\n'],
    ['POST', '/tx?name=nope.db&lockID=1', { 'Litefs-Id': REPLICA }, 'x', 404, 'database not found: "nope.db"\n'],
    ['POST', '/tx?name=a.db&lockID=1', { 'Litefs-Id': REPLICA }, '', 500, 'write ltx file: unexpected EOF\n'],
    ['POST', '/handoff', {}, '', 400, 'invalid node id\n'],
    ['POST', '/handoff?nodeID=0x12', {}, '', 400, 'invalid node id\n'],
    ['POST', '/handoff?nodeID=1FFFFFFFFFFFFFFFF', {}, '', 400, 'invalid node id\n'],
    ['POST', '/handoff?nodeID=0123456789abcdef', {}, '', 500, 'cannot handoff: target node is not currently connected\n'],
  ];
  for (const [method, target, headers, body, status, text] of cases) {
    test(`${method} ${target}${headers['Litefs-Id'] ? ` (Litefs-Id ${headers['Litefs-Id']})` : ''} → ${status}`, async () => {
      const res = await h1(s.port, method, target, headers, body);
      assert.equal(res.status, status);
      assert.equal(res.body, text);
    });
  }

  test('HEAD /info → 405 with no body', async () => {
    const raw = await rawHTTP1(s.port, Buffer.from('HEAD /info HTTP/1.1\r\nHost: x\r\n\r\n'), {
      done: (b) => b.includes('\r\n\r\n'),
      settleMs: 20,
    });
    assert.match(raw.toString(), /^HTTP\/1\.1 405 Method Not Allowed\r\n[^]*\r\n\r\n$/);
  });

  test('the same errors over HTTP/2, on one session', async () => {
    const post = (path: string, body: Buffer, id = REPLICA) =>
      h2(s.session, { ':method': 'POST', ':path': path, 'litefs-id': id }, body);
    let r = await post('/stream', Buffer.alloc(0));
    assert.deepEqual([r.status, r.body.toString()], [400, 'EOF\n']);
    r = await post('/stream', Buffer.from('000000', 'hex'));
    assert.deepEqual([r.status, r.body.toString()], [400, 'unexpected EOF\n']);
    r = await post('/stream', Buffer.from('00000000', 'hex'), SELF);
    assert.deepEqual([r.status, r.body.toString()], [400, 'cannot connect to self\n']);
    r = await h2(s.session, { ':method': 'PATCH', ':path': '/stream' });
    assert.deepEqual([r.status, r.body.toString()], [405, 'method not allowed\n']);
    r = await h2(s.session, { ':path': '/nope' });
    assert.deepEqual([r.status, r.body.toString()], [404, '404 page not found\n']);
    r = await h2(s.session, { ':path': '/info' });
    assert.equal(r.status, 200, 'a good request still works on the same session');
  });

  test('good requests to every endpoint work after all the bad ones, on one keep-alive connection', async () => {
    const reqs = [
      'GET /info HTTP/1.1\r\nHost: x\r\n\r\n',
      'POST /halt?name=a.db&id=42 HTTP/1.1\r\nHost: x\r\nLitefs-Id: 0123456789ABCDEF\r\nContent-Length: 0\r\n\r\n',
      'DELETE /halt?name=a.db&id=42 HTTP/1.1\r\nHost: x\r\nLitefs-Id: 0123456789ABCDEF\r\n\r\n',
      'POST /tx?name=a.db&lockID=42 HTTP/1.1\r\nHost: x\r\nLitefs-Id: 0123456789ABCDEF\r\nContent-Length: 3\r\n\r\nltx',
      'POST /import?name=c.db HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n64\r\n' + 'd'.repeat(100) + '\r\n0\r\n\r\n',
      'POST /promote HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n',
    ];
    const responses = await new Promise<string>((resolve, reject) => {
      const sock = netConnect(s.port, '127.0.0.1');
      let out = '';
      sock.on('data', (d) => {
        out += d.toString('latin1');
        if ((out.match(/HTTP\/1\.1 /g) ?? []).length === reqs.length && out.endsWith('\r\n\r\n')) {
          sock.destroy();
          resolve(out);
        }
      });
      sock.on('error', reject);
      sock.write(reqs.join(''));
    });
    const statuses = [...responses.matchAll(/HTTP\/1\.1 (\d+)/g)].map((m) => Number(m[1]));
    assert.deepEqual(statuses, [200, 200, 200, 200, 200, 200]);
    assert.match(responses, /\r\n\r\n\{"id":42,"pos":\{"TXID":"0000000000000003","PostApplyChecksum":"a444cfc485df4b1d"\},"expires":"2026-11-23T21:17:01.123Z"\}\n/);
    assert.deepEqual(s.node.calls.slice(-4), ['halt a.db 42', 'unhalt a.db 42', 'tx a.db 42 3', 'import c.db 100']);
  });
});

describe('stream endings and additions', () => {
  test('closing the server ends an open stream with an End frame', async () => {
    const s = await start();
    const res = h2(s.session, { ':method': 'POST', ':path': '/stream', 'litefs-id': REPLICA }, caughtUp);
    await new Promise((r) => setTimeout(r, 100));
    await s.server.close();
    const got = await res;
    assert.deepEqual(decodeFrames(got.body).map((f) => f.type), ['ready', 'heartbeat', 'end']);
    s.session.close();
  });

  test('losing the lease ends the stream with an End frame, and new streams get 503', async () => {
    const s = await start();
    try {
      const res = h2(s.session, { ':method': 'POST', ':path': '/stream', 'litefs-id': REPLICA }, caughtUp);
      await new Promise((r) => setTimeout(r, 100));
      s.node.loseLease();
      assert.deepEqual(decodeFrames((await res).body).map((f) => f.type), ['ready', 'heartbeat', 'end']);
      const again = await h2(s.session, { ':method': 'POST', ':path': '/stream', 'litefs-id': REPLICA }, caughtUp);
      assert.deepEqual([again.status, again.body.toString()], [503, 'context canceled\n']);
      const imp = await h2(s.session, { ':method': 'POST', ':path': '/import?name=a.db' }, Buffer.alloc(200));
      assert.deepEqual([imp.status, imp.body.toString()], [503, 'context canceled\n']);
    } finally {
      await s.stop();
    }
  });

  test('a pending handoff is sent after pending data, then the stream ends', async () => {
    const s = await start();
    try {
      const res = h2(s.session, { ':method': 'POST', ':path': '/stream', 'litefs-id': REPLICA }, caughtUp);
      await new Promise((r) => setTimeout(r, 100));
      s.node.txids.set('a.db', 4);
      s.node.notify(['a.db'], 'lease-42');
      const frames = decodeFrames((await res).body);
      assert.deepEqual(frames.map((f) => f.type), ['ready', 'heartbeat', 'ltx', 'hwm', 'handoff', 'end']);
      assert.deepEqual(frames[4], { type: 'handoff', leaseID: 'lease-42' });
    } finally {
      await s.stop();
    }
  });

  test('a replica that disconnects releases its change subscription and the stream gauge', async () => {
    const s = await start();
    try {
      await h2(s.session, { ':method': 'POST', ':path': '/stream', 'litefs-id': REPLICA }, caughtUp, (b) => b.length >= 16);
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(s.node.subscriptions.length, 1);
      assert.equal(s.node.subscriptions[0]!.closed, true);
      const metrics = await s.registry.getSingleMetricAsString('litefs_http_stream_count');
      assert.match(metrics, /^litefs_http_stream_count 0$/m);
    } finally {
      await s.stop();
    }
  });

  test('addition: Litefs-Epoch is sent on /stream when the node knows its epoch (ARCHITECTURE §2, §8), sorted like Go sorts headers', async () => {
    const s = await start((n) => (n.epochValue = 7n));
    try {
      const r = await h2(s.session, { ':method': 'POST', ':path': '/stream', 'litefs-id': REPLICA }, caughtUp, (b) => b.length >= 16);
      assert.deepEqual(
        r.headers.map(([k]) => k),
        ['litefs-cluster-id', 'litefs-epoch', 'litefs-id', 'date'],
      );
      assert.equal(r.headers[1]![1], '7');
    } finally {
      await s.stop();
    }
  });

  test('without a cluster id the header is left out and /info omits clusterID', async () => {
    const node = new FakeNode(NODE_ID, '');
    const server = new ApiServer({ node, registry: new Registry() });
    const { port } = await server.listen(0, '127.0.0.1');
    try {
      const res = await h1(port, 'GET', '/info');
      assert.deepEqual(res.headers.map(([k]) => k), ['Litefs-Id', 'Date', 'Content-Length', 'Content-Type']);
      assert.equal(res.body.startsWith('{\n  "isPrimary": true,'), true, res.body);
    } finally {
      await server.close();
    }
  });

  test('addition: a request naming another cluster in Litefs-Cluster-Id gets 412 with a plain-text reason, on every endpoint and both protocols', async () => {
    const s = await start();
    const other = 'LFSC0000000000000001';
    const want = 'cluster id mismatch: this node is LFSC00112233445566AA, the request is from LFSC0000000000000001\n';
    try {
      const stream = await h2(s.session, { ':method': 'POST', ':path': '/stream', 'litefs-id': REPLICA, 'litefs-cluster-id': other }, caughtUp);
      assert.equal(stream.status, 412);
      assert.equal(stream.body.toString(), want);
      assert.deepEqual(stream.headers.filter(([k]) => k.startsWith('litefs-')), [['litefs-cluster-id', 'LFSC00112233445566AA'], ['litefs-id', SELF]]);
      assert.equal(s.node.subscriptions.length, 0, 'no stream was started');
      for (const [method, target] of [['GET', '/info'], ['GET', '/export?name=a.db'], ['POST', '/import?name=a.db'], ['POST', '/promote'], ['POST', '/halt?id=7&name=a.db'], ['POST', '/tx?lockID=7&name=a.db']] as const) {
        const r = await h1(s.port, method, target, { 'Litefs-Cluster-Id': other });
        assert.equal(r.status, 412, `${method} ${target}`);
        assert.equal(r.body, want);
      }
      assert.deepEqual(s.node.calls, [], 'nothing reached the node');
    } finally {
      await s.stop();
    }
  });

  test('addition: Litefs-Cluster-Id is accepted when absent (Go nodes), equal, malformed, or when this node has no id yet', async () => {
    const s = await start();
    try {
      for (const headers of [{}, { 'Litefs-Cluster-Id': 'LFSC00112233445566AA' }, { 'Litefs-Cluster-Id': 'lfsc0000000000000001' }, { 'Litefs-Cluster-Id': 'x' }] as Record<string, string>[]) {
        assert.equal((await h1(s.port, 'GET', '/info', headers)).status, 200, JSON.stringify(headers));
      }
      const ok = await h2(s.session, { ':method': 'POST', ':path': '/stream', 'litefs-id': REPLICA, 'litefs-cluster-id': 'LFSC00112233445566AA' }, caughtUp, (b) => b.length >= 16);
      assert.equal(ok.status, 200);
    } finally {
      await s.stop();
    }
    const node = new FakeNode(NODE_ID, '');
    const server = new ApiServer({ node, registry: new Registry() });
    const { port } = await server.listen(0, '127.0.0.1');
    try {
      assert.equal((await h1(port, 'GET', '/info', { 'Litefs-Cluster-Id': 'LFSC0000000000000001' })).status, 200);
    } finally {
      await server.close();
    }
  });
});

describe('failures while streaming', () => {
  test('deliberate difference: a failure mid-stream resets the HTTP/2 stream instead of writing error text into the frames', async () => {
    const s = await start((n) => {
      n.openLTXFile = async () => {
        throw new Error('verify ltx: file checksum mismatch');
      };
    });
    try {
      const positions = encodePosMap(new Map([['a.db', { txid: 2n, postApplyChecksum: RECORDED_POS['a.db']![2]! }]]));
      await assert.rejects(
        h2(s.session, { ':method': 'POST', ':path': '/stream', 'litefs-id': REPLICA }, positions),
        /NGHTTP2_INTERNAL_ERROR|stream error/i,
      );
      assert.equal((await h2(s.session, { ':path': '/info' })).status, 200);
    } finally {
      await s.stop();
    }
  });
});

describe('garbage on the wire', () => {
  test('a broken HTTP/2 preface or a malformed HTTP/1.1 request costs only that connection', async () => {
    const s = await start();
    try {
      const h2garbage = await rawHTTP1(s.port, Buffer.from('PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n' + 'z'.repeat(100)), {
        done: () => true,
        timeoutMs: 500,
      });
      assert.ok(h2garbage.length < 200, 'at most a GOAWAY comes back');
      const h1garbage = await rawHTTP1(s.port, Buffer.from('\x00\x01\x02 nonsense\r\n\r\n'), { timeoutMs: 500 });
      assert.match(h1garbage.toString('latin1'), /^HTTP\/1\.1 400 Bad Request/);
      const ok = await h1(s.port, 'GET', '/info');
      assert.equal(ok.status, 200);
      const ok2 = await h2(s.session, { ':path': '/info' });
      assert.equal(ok2.status, 200);
    } finally {
      await s.stop();
    }
  });
});
