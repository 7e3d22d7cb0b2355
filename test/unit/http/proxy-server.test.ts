/**
 * The HTTP proxy (ProxyServer) in front of a real in-process application
 * server: health, reads waiting for the `__txid` cookie, writes on the
 * primary setting it, writes on a replica forwarded to the primary's proxy
 * or answered with `fly-replay`, passthrough paths, an application that is
 * down or still starting, streamed answers and protocol upgrades.
 *
 * The node behind the proxy is a stand-in (StandInNode) because this unit
 * test checks the HTTP routing only; the real node is exercised by the
 * cluster test.
 */
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { FORWARDED_HEADER, ProxyServer, type ProxyNode, type ProxyOptions } from '../../../src/http/proxy/server.js';
import { ChangeSignal } from '../../../src/node/change-signal.js';

const DB = 'app.db';
const TXID_SET_COOKIE = /^__txid=([0-9a-f]{16}); Path=\/; Expires=[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT; HttpOnly$/;

function cookieFor(txid: bigint): string {
  return `__txid=${txid.toString(16).padStart(16, '0')}`;
}

/** The node as the proxy sees it, set by each test (see the file comment). */
class StandInNode implements ProxyNode {
  primary = true;
  primaryInfo: { hostname: string; advertiseURL: string } | null = null;
  lag = 0;
  readonly txids = new Map<string, bigint>();
  currentTXIDCalls = 0;
  changedCalls = 0;
  private readonly changes = new ChangeSignal();

  /** A replica; `primaryHostname` set: it knows a primary whose API (and so proxy) host is 127.0.0.1. */
  static replica(primaryHostname?: string): StandInNode {
    const node = new StandInNode();
    node.primary = false;
    if (primaryHostname !== undefined) node.primaryInfo = { hostname: primaryHostname, advertiseURL: 'http://127.0.0.1:20202' };
    return node;
  }

  isPrimary(): boolean {
    return this.primary;
  }
  knownPrimary(): { readonly hostname: string; readonly advertiseURL: string } | null {
    return this.primaryInfo;
  }
  lagMs(): number {
    return this.lag;
  }
  txid(db: string): bigint | undefined {
    return this.txids.get(db);
  }
  async currentTXID(db: string): Promise<bigint | undefined> {
    this.currentTXIDCalls++;
    return this.txids.get(db);
  }
  changed(ms: number): Promise<void> {
    this.changedCalls++;
    return this.changes.next(ms);
  }
  /** Moves the database to `txid` and wakes everyone waiting in changed(). */
  bump(db: string, txid: bigint): void {
    this.txids.set(db, txid);
    this.notify();
  }
  notify(): void {
    this.changes.notify();
  }
}

interface SeenRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

type AppHandler = (req: IncomingMessage, body: Buffer, res: ServerResponse) => void;

/** The default application: answers 200 with a small text body. */
const okApp: AppHandler = (_req, _body, res) => {
  res.writeHead(200, { 'content-type': 'text/plain' });
  res.end('app\n');
};

interface App {
  readonly server: Server;
  readonly port: number;
  readonly seen: SeenRequest[];
}

/** The application server on 127.0.0.1 (port 0 unless given); closed when the test ends. */
async function startApp(t: TestContext, handler: AppHandler = okApp, port = 0): Promise<App> {
  const seen: SeenRequest[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      handler(req, body, res);
    });
  });
  // Every connection, upgraded ones too (closeAllConnections does not see those).
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  t.after(() => {
    const closed = closeServer(server);
    for (const socket of sockets) socket.destroy();
    return closed;
  });
  return { server, port: (server.address() as AddressInfo).port, seen };
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/** A port nothing listens on (bound once, then released). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  await closeServer(server);
  return port;
}

function proxyOptions(targetPort: number, overrides: Partial<ProxyOptions> = {}): ProxyOptions {
  return {
    host: '127.0.0.1',
    port: 0,
    target: { host: '127.0.0.1', port: targetPort },
    db: DB,
    maxLagMs: 0,
    passthrough: [],
    alwaysForward: [],
    primaryRedirectTimeoutMs: 150,
    readTimeoutMs: 0,
    readHeaderTimeoutMs: 0,
    writeTimeoutMs: 0,
    idleTimeoutMs: 5_000,
    writes: 'forward',
    debug: false,
    log: () => {},
    targetRetryMs: 150,
    readWaitMs: 150,
    ...overrides,
  };
}

/** A ProxyServer in front of `targetPort`; closed when the test ends. Returns its port. */
async function startProxy(t: TestContext, node: ProxyNode, targetPort: number, overrides: Partial<ProxyOptions> = {}): Promise<number> {
  const proxy = new ProxyServer(node, proxyOptions(targetPort, overrides));
  t.after(() => proxy.close());
  const { port } = await proxy.listen();
  return port;
}

interface Answer {
  readonly status: number;
  readonly statusMessage: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
  readonly text: string;
}

/** One request over its own connection (node:http, so Set-Cookie stays a list). */
function send(
  port: number,
  method: string,
  path: string,
  options: { headers?: Record<string, string>; body?: string | Buffer; host?: string } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: options.host ?? '127.0.0.1', port, method, path, headers: options.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        resolve({ status: res.statusCode ?? 0, statusMessage: res.statusMessage ?? '', headers: res.headers, body, text: body.toString() });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

function setCookies(answer: Answer): string[] {
  return answer.headers['set-cookie'] ?? [];
}

describe('health', () => {
  test('GET /litefs/health answers 200 OK from the proxy itself', async (t) => {
    const app = await startApp(t);
    const node = new StandInNode();
    const port = await startProxy(t, node, app.port);
    const res = await send(port, 'GET', '/litefs/health');
    assert.equal(res.status, 200);
    assert.equal(res.text, 'OK\n');
    assert.equal(app.seen.length, 0);
  });

  test('beyond maxLagMs the health check answers 503 Replication lag exceeded', async (t) => {
    const app = await startApp(t);
    const node = StandInNode.replica();
    node.lag = 500;
    const port = await startProxy(t, node, app.port, { maxLagMs: 100 });
    const res = await send(port, 'GET', '/litefs/health');
    assert.equal(res.status, 503);
    assert.equal(res.text, 'Replication lag exceeded\n');
  });

  test('within maxLagMs, or with maxLagMs 0, the health check is OK', async (t) => {
    const app = await startApp(t);
    const node = new StandInNode();
    node.lag = 50;
    const limited = await startProxy(t, node, app.port, { maxLagMs: 100 });
    assert.equal((await send(limited, 'GET', '/litefs/health')).status, 200);
    node.lag = 1_000_000;
    const unlimited = await startProxy(t, node, app.port, { maxLagMs: 0 });
    assert.equal((await send(unlimited, 'GET', '/litefs/health')).status, 200);
  });
});

describe('reads', () => {
  test('X-Forwarded-For gets the client address appended to what earlier proxies wrote', async (t) => {
    const app = await startApp(t);
    const port = await startProxy(t, new StandInNode(), app.port);
    await send(port, 'GET', '/', { headers: { 'x-forwarded-for': '203.0.113.7' } });
    assert.equal(app.seen[0]?.headers['x-forwarded-for'], '203.0.113.7, 127.0.0.1');
  });

  test('a GET without cookie reaches the app with method, path, query, headers and body intact, and the whole answer comes back', async (t) => {
    const app = await startApp(t, (_req, body, res) => {
      res.setHeader('set-cookie', ['a=1; Path=/', 'b=2; HttpOnly']);
      res.writeHead(201, 'Made It', { 'content-type': 'application/json', 'x-app': 'yes' });
      res.end(JSON.stringify({ got: body.toString() }));
    });
    const node = StandInNode.replica();
    node.txids.set(DB, 5n);
    const port = await startProxy(t, node, app.port);
    const res = await send(port, 'GET', '/items/1?x=1&y=a%20b', {
      headers: { 'x-custom': 'custom value', 'content-type': 'text/plain', 'content-length': '7', host: 'app.example' },
      body: 'payload',
    });

    assert.equal(app.seen.length, 1);
    const seen = app.seen[0]!;
    assert.equal(seen.method, 'GET');
    assert.equal(seen.url, '/items/1?x=1&y=a%20b');
    assert.equal(seen.headers['x-custom'], 'custom value');
    assert.equal(seen.headers['content-type'], 'text/plain');
    assert.equal(seen.headers.host, 'app.example');
    assert.equal(seen.body.toString(), 'payload');
    assert.equal(seen.headers[FORWARDED_HEADER], undefined);
    assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1', 'the client address is passed on');

    assert.equal(res.status, 201);
    assert.equal(res.statusMessage, 'Made It');
    assert.equal(res.headers['content-type'], 'application/json');
    assert.equal(res.headers['x-app'], 'yes');
    assert.deepEqual(setCookies(res), ['a=1; Path=/', 'b=2; HttpOnly'], 'a read sets no __txid cookie');
    assert.deepEqual(JSON.parse(res.text), { got: 'payload' });
  });

  test('fetch sees every Set-Cookie header of the app too', async (t) => {
    const app = await startApp(t, (_req, _body, res) => {
      res.setHeader('set-cookie', ['a=1', 'b=2']);
      res.end('ok');
    });
    const node = new StandInNode();
    const port = await startProxy(t, node, app.port);
    const res = await fetch(`http://127.0.0.1:${port}/page`);
    assert.equal(res.status, 200);
    assert.deepEqual(res.headers.getSetCookie(), ['a=1', 'b=2']);
    assert.equal(await res.text(), 'ok');
  });

  test('a HEAD is a read and gets the app headers without a body', async (t) => {
    const app = await startApp(t, (_req, _body, res) => {
      res.writeHead(200, { 'x-app': 'head', 'content-length': '10' });
      res.end();
    });
    const node = new StandInNode();
    const port = await startProxy(t, node, app.port);
    const res = await send(port, 'HEAD', '/thing');
    assert.equal(res.status, 200);
    assert.equal(res.headers['x-app'], 'head');
    assert.equal(res.headers['content-length'], '10');
    assert.equal(res.body.length, 0);
    assert.equal(app.seen[0]?.method, 'HEAD');
  });

  test('a GET whose cookie is ahead of the node waits until the node reaches that TXID, then is served', { timeout: 10_000 }, async (t) => {
    const node = StandInNode.replica();
    node.txids.set(DB, 5n);
    let txidWhenServed: bigint | undefined;
    const app = await startApp(t, (_req, _body, res) => {
      txidWhenServed = node.txid(DB);
      res.end('fresh');
    });
    const port = await startProxy(t, node, app.port, { readWaitMs: 5_000 });
    const timer = setTimeout(() => node.bump(DB, 9n), 50);
    t.after(() => clearTimeout(timer));
    const res = await send(port, 'GET', '/items', { headers: { cookie: `theme=dark; ${cookieFor(9n)}` } });
    assert.equal(res.status, 200);
    assert.equal(res.text, 'fresh');
    assert.equal(txidWhenServed, 9n, 'the app was asked only once the node had the TXID');
    assert.ok(node.changedCalls >= 1);
  });

  test('a GET whose client leaves while it waits for its cookie never reaches the app', { timeout: 10_000 }, async (t) => {
    const app = await startApp(t);
    const node = StandInNode.replica();
    node.txids.set(DB, 5n);
    const port = await startProxy(t, node, app.port, { readWaitMs: 5_000 });
    const req = httpRequest({ host: '127.0.0.1', port, path: '/items', agent: false, headers: { cookie: cookieFor(9n) } });
    const closed = new Promise<void>((resolve) => req.on('close', () => resolve()));
    req.on('error', () => {});
    req.end();
    while (node.changedCalls === 0) await new Promise((resolve) => setTimeout(resolve, 10));
    req.destroy();
    await closed;
    await new Promise((resolve) => setTimeout(resolve, 50));
    node.bump(DB, 9n);
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(app.seen.length, 0);
  });

  test('a GET whose cookie TXID is never reached gets 504 Proxy timeout after readWaitMs', async (t) => {
    const app = await startApp(t);
    const node = StandInNode.replica();
    node.txids.set(DB, 5n);
    const port = await startProxy(t, node, app.port, { readWaitMs: 150 });
    const res = await send(port, 'GET', '/items', { headers: { cookie: cookieFor(6n) } });
    assert.equal(res.status, 504);
    assert.equal(res.text, 'Proxy timeout\n');
    assert.equal(app.seen.length, 0);
  });

  test('a GET whose cookie is at or behind the node is served without waiting', async (t) => {
    const app = await startApp(t);
    const node = StandInNode.replica();
    node.txids.set(DB, 5n);
    const port = await startProxy(t, node, app.port, { readWaitMs: 5_000 });
    assert.equal((await send(port, 'GET', '/a', { headers: { cookie: cookieFor(5n) } })).status, 200);
    assert.equal((await send(port, 'GET', '/b', { headers: { cookie: cookieFor(1n) } })).status, 200);
    assert.equal(node.changedCalls, 0);
  });

  test('on the primary a GET ahead of the last TXID heard asks the node for the current TXID', async (t) => {
    const app = await startApp(t);
    const node = new StandInNode();
    node.txids.set(DB, 5n);
    const port = await startProxy(t, node, app.port, { readWaitMs: 150 });
    const res = await send(port, 'GET', '/items', { headers: { cookie: cookieFor(6n) } });
    assert.equal(res.status, 504);
    assert.equal(node.currentTXIDCalls, 1);
  });

  test('a GET on a database the node does not have is passed at once, whatever its cookie', async (t) => {
    const app = await startApp(t);
    const node = StandInNode.replica();
    const port = await startProxy(t, node, app.port, { readWaitMs: 5_000 });
    const res = await send(port, 'GET', '/items', { headers: { cookie: cookieFor(0xffffn) } });
    assert.equal(res.status, 200);
    assert.equal(res.text, 'app\n');
    assert.equal(node.changedCalls, 0);
  });

  test('an invalid __txid cookie is no cookie: the read is served without waiting', async (t) => {
    const app = await startApp(t);
    const node = StandInNode.replica();
    node.txids.set(DB, 1n);
    const port = await startProxy(t, node, app.port, { readWaitMs: 5_000 });
    const res = await send(port, 'GET', '/items', { headers: { cookie: '__txid=notatxid' } });
    assert.equal(res.status, 200);
    assert.equal(node.changedCalls, 0);
  });
});

describe('writes on the primary', () => {
  test("a POST gets the app's answer plus a __txid cookie of currentTXID, after the app's own cookies", async (t) => {
    const app = await startApp(t, (_req, body, res) => {
      res.setHeader('set-cookie', ['a=1', 'b=2']);
      res.writeHead(201, { 'x-app': 'wrote' });
      res.end(`stored ${body.toString()}`);
    });
    const node = new StandInNode();
    node.txids.set(DB, 0x2an);
    const port = await startProxy(t, node, app.port);
    const res = await send(port, 'POST', '/items?x=1', { headers: { 'content-type': 'text/plain' }, body: 'thing' });

    assert.equal(res.status, 201);
    assert.equal(res.headers['x-app'], 'wrote');
    assert.equal(res.text, 'stored thing');
    const cookies = setCookies(res);
    assert.equal(cookies.length, 3);
    assert.deepEqual(cookies.slice(0, 2), ['a=1', 'b=2']);
    assert.match(cookies[2]!, TXID_SET_COOKIE);
    assert.equal(TXID_SET_COOKIE.exec(cookies[2]!)![1], '000000000000002a');
    assert.ok(node.currentTXIDCalls >= 1, 'the cookie comes from currentTXID');
    assert.equal(app.seen[0]?.method, 'POST');
    assert.equal(app.seen[0]?.url, '/items?x=1');
  });

  test('PUT, DELETE and PATCH are writes and get the cookie too', async (t) => {
    const app = await startApp(t);
    const node = new StandInNode();
    node.txids.set(DB, 3n);
    const port = await startProxy(t, node, app.port);
    for (const method of ['PUT', 'DELETE', 'PATCH']) {
      const res = await send(port, method, '/items/1', { body: method === 'DELETE' ? undefined : 'x' });
      assert.equal(res.status, 200, method);
      assert.equal(setCookies(res).length, 1, method);
      assert.equal(TXID_SET_COOKIE.exec(setCookies(res)[0]!)?.[1], '0000000000000003', method);
    }
    assert.deepEqual(
      app.seen.map((s) => s.method),
      ['PUT', 'DELETE', 'PATCH'],
    );
  });

  test('a GET on an always-forward path is a write: it gets the cookie', async (t) => {
    const app = await startApp(t);
    const node = new StandInNode();
    node.txids.set(DB, 4n);
    const port = await startProxy(t, node, app.port, { alwaysForward: ['/admin/*'] });
    const res = await send(port, 'GET', '/admin/stats');
    assert.equal(res.status, 200);
    assert.equal(TXID_SET_COOKIE.exec(setCookies(res)[0] ?? '')?.[1], '0000000000000004');
  });

  test('a write on a database the node does not have gets no cookie', async (t) => {
    const app = await startApp(t);
    const node = new StandInNode();
    const port = await startProxy(t, node, app.port);
    const res = await send(port, 'POST', '/items', { body: 'x' });
    assert.equal(res.status, 200);
    assert.deepEqual(setCookies(res), []);
  });

  test('a POST body of 1 MiB reaches the app intact', async (t) => {
    const app = await startApp(t, (_req, body, res) => {
      res.end(JSON.stringify({ length: body.length, sha256: createHash('sha256').update(body).digest('hex') }));
    });
    const node = new StandInNode();
    node.txids.set(DB, 1n);
    const port = await startProxy(t, node, app.port);
    const payload = randomBytes(1 << 20);
    const res = await send(port, 'POST', '/upload', { headers: { 'content-type': 'application/octet-stream' }, body: payload });
    assert.equal(res.status, 200);
    assert.deepEqual(JSON.parse(res.text), { length: payload.length, sha256: createHash('sha256').update(payload).digest('hex') });
  });

  test('a 1 MiB answer from the app reaches the client intact', async (t) => {
    const payload = randomBytes(1 << 20);
    const app = await startApp(t, (_req, _body, res) => res.end(payload));
    const node = new StandInNode();
    const port = await startProxy(t, node, app.port);
    const res = await send(port, 'GET', '/download');
    assert.equal(res.status, 200);
    assert.ok(res.body.equals(payload));
  });
});

describe('passthrough paths', () => {
  test('a POST on a passthrough path reaches the app and gets no __txid cookie', async (t) => {
    const app = await startApp(t, (_req, _body, res) => {
      res.setHeader('set-cookie', 'own=1');
      res.end('passed');
    });
    const node = new StandInNode();
    node.txids.set(DB, 8n);
    const port = await startProxy(t, node, app.port, { passthrough: ['/static/*'] });
    const res = await send(port, 'POST', '/static/upload', { body: 'x' });
    assert.equal(res.status, 200);
    assert.equal(res.text, 'passed');
    assert.deepEqual(setCookies(res), ['own=1']);
    assert.equal(node.currentTXIDCalls, 0);
  });

  test('a POST on a passthrough path is run by a replica itself, not forwarded', async (t) => {
    const app = await startApp(t);
    const node = StandInNode.replica();
    const port = await startProxy(t, node, app.port, { passthrough: ['/static/*'] });
    const res = await send(port, 'POST', '/static/upload', { body: 'x' });
    assert.equal(res.status, 200);
    assert.equal(app.seen.length, 1);
  });

  test('a GET on a passthrough path does not wait for its cookie', async (t) => {
    const app = await startApp(t);
    const node = StandInNode.replica();
    node.txids.set(DB, 1n);
    const port = await startProxy(t, node, app.port, { passthrough: ['*.css'], readWaitMs: 5_000 });
    const res = await send(port, 'GET', '/theme/site.css', { headers: { cookie: cookieFor(99n) } });
    assert.equal(res.status, 200);
    assert.equal(node.changedCalls, 0);
  });

  test('a passthrough rule covering /litefs/health sends the health check to the app', async (t) => {
    const app = await startApp(t);
    const node = new StandInNode();
    const port = await startProxy(t, node, app.port, { passthrough: ['/litefs/*'] });
    const res = await send(port, 'GET', '/litefs/health');
    assert.equal(res.text, 'app\n');
    assert.equal(app.seen[0]?.url, '/litefs/health');
  });
});

describe('writes on a replica', () => {
  test('with no known primary a POST gets 503 no primary available after primaryRedirectTimeoutMs', async (t) => {
    const app = await startApp(t);
    const node = StandInNode.replica();
    const port = await startProxy(t, node, app.port, { primaryRedirectTimeoutMs: 150 });
    const res = await send(port, 'POST', '/items', { body: 'x' });
    assert.equal(res.status, 503);
    assert.equal(res.text, 'Proxy error: no primary available\n');
    assert.equal(app.seen.length, 0);
  });

  test('a write waiting for a primary is run here once this node becomes primary', { timeout: 10_000 }, async (t) => {
    const app = await startApp(t);
    const node = StandInNode.replica();
    node.txids.set(DB, 2n);
    const port = await startProxy(t, node, app.port, { primaryRedirectTimeoutMs: 5_000 });
    const timer = setTimeout(() => {
      node.primary = true;
      node.notify();
    }, 50);
    t.after(() => clearTimeout(timer));
    const res = await send(port, 'POST', '/items', { body: 'late' });
    assert.equal(res.status, 200);
    assert.equal(app.seen[0]?.body.toString(), 'late');
    assert.equal(TXID_SET_COOKIE.exec(setCookies(res)[0] ?? '')?.[1], '0000000000000002');
  });

  test("a POST is forwarded to the primary's proxy; the client gets the primary's answer and cookie", async (t) => {
    // The primary's proxy on 127.0.0.1:P, the replica's on 127.0.0.2:P: a
    // replica forwards to the host of the primary's advertise URL and its own port.
    const primaryApp = await startApp(t, (_req, body, res) => {
      res.setHeader('set-cookie', 'session=abc');
      res.writeHead(201, { 'x-served-by': 'primary' });
      res.end(`primary stored ${body.toString()}`);
    });
    const primaryNode = new StandInNode();
    primaryNode.txids.set(DB, 0x77n);
    const port = await startProxy(t, primaryNode, primaryApp.port);

    const replicaApp = await startApp(t);
    const replicaNode = StandInNode.replica('p');
    replicaNode.txids.set(DB, 0x70n);
    await startProxy(t, replicaNode, replicaApp.port, { host: '127.0.0.2', port });

    const res = await send(port, 'POST', '/items?from=replica', { host: '127.0.0.2', headers: { 'x-custom': 'c' }, body: 'row' });
    assert.equal(res.status, 201);
    assert.equal(res.headers['x-served-by'], 'primary');
    assert.equal(res.text, 'primary stored row');
    const cookies = setCookies(res);
    assert.equal(cookies[0], 'session=abc');
    assert.equal(TXID_SET_COOKIE.exec(cookies[1] ?? '')?.[1], '0000000000000077', 'the TXID is the primary node’s');
    assert.equal(cookies.length, 2, 'the replica adds no cookie of its own');

    assert.equal(replicaApp.seen.length, 0);
    assert.equal(primaryApp.seen.length, 1);
    const seen = primaryApp.seen[0]!;
    assert.equal(seen.method, 'POST');
    assert.equal(seen.url, '/items?from=replica');
    assert.equal(seen.body.toString(), 'row');
    assert.equal(seen.headers['x-custom'], 'c');
    assert.equal(seen.headers[FORWARDED_HEADER], '1');
    assert.equal(replicaNode.currentTXIDCalls, 0);
  });

  test(
    'a write whose client leaves while it waits for a primary never reaches the app',
    { timeout: 10_000 },
    async (t) => {
      const app = await startApp(t);
      let appConnections = 0;
      app.server.on('connection', () => appConnections++);
      const node = StandInNode.replica();
      const port = await startProxy(t, node, app.port, { primaryRedirectTimeoutMs: 5_000 });
      const req = httpRequest({ host: '127.0.0.1', port, method: 'POST', path: '/items', agent: false, headers: { 'content-length': '2' } });
      const closed = new Promise<void>((resolve) => req.on('close', () => resolve()));
      req.on('error', () => {});
      req.end('ok');
      while (node.changedCalls === 0) await new Promise((resolve) => setTimeout(resolve, 10));
      req.destroy();
      await closed;
      await new Promise((resolve) => setTimeout(resolve, 50));
      node.primary = true;
      node.notify();
      await new Promise((resolve) => setTimeout(resolve, 150));
      assert.equal(appConnections, 0, 'the proxy opened a connection to the app for a client that had gone');
    },
  );

  test('a forwarded write reaching a node that is not the primary is never forwarded again: 503', async (t) => {
    const app = await startApp(t);
    const node = StandInNode.replica('p');
    const port = await startProxy(t, node, app.port, { primaryRedirectTimeoutMs: 150 });
    const res = await send(port, 'POST', '/items', { headers: { [FORWARDED_HEADER]: '1' }, body: 'x' });
    assert.equal(res.status, 503);
    assert.equal(res.text, 'Proxy error: forwarded write reached a node that is not the primary\n');
    assert.equal(app.seen.length, 0);
  });

  test('a forwarded write reaching the primary is run there', async (t) => {
    const app = await startApp(t);
    const node = new StandInNode();
    node.txids.set(DB, 1n);
    const port = await startProxy(t, node, app.port);
    const res = await send(port, 'POST', '/items', { headers: { [FORWARDED_HEADER]: '1' }, body: 'x' });
    assert.equal(res.status, 200);
    assert.equal(setCookies(res).length, 1);
  });

  test("with writes: 'fly-replay' a replica answers 200 with fly-replay: instance=<primary hostname> and an empty body", async (t) => {
    const app = await startApp(t);
    const node = StandInNode.replica('primary-host');
    const port = await startProxy(t, node, app.port, { writes: 'fly-replay' });
    const res = await send(port, 'POST', '/items', { body: 'x' });
    assert.equal(res.status, 200);
    assert.equal(res.headers['fly-replay'], 'instance=primary-host');
    assert.equal(res.text, '');
    assert.equal(app.seen.length, 0);
  });

  test('a primary that cannot be reached gives 502 Proxy error naming the primary', async (t) => {
    const app = await startApp(t);
    const node = StandInNode.replica('gone');
    // The replica listens on 127.0.0.2:P; nothing listens on 127.0.0.1:P.
    const port = await freePort();
    await startProxy(t, node, app.port, { host: '127.0.0.2', port });
    const res = await send(port, 'POST', '/items', { host: '127.0.0.2', body: 'x' });
    assert.equal(res.status, 502);
    assert.match(res.text, /^Proxy error: .*\(forwarding to the primary gone\)\n$/);
  });
});

describe('the application', () => {
  test('an app that is not listening gives 502 Proxy error once targetRetryMs has passed', async (t) => {
    const node = new StandInNode();
    const port = await startProxy(t, node, await freePort(), { targetRetryMs: 150 });
    const res = await send(port, 'GET', '/items');
    assert.equal(res.status, 502);
    assert.ok(res.text.startsWith('Proxy error:'), res.text);
  });

  test('an app that starts listening after the request arrived, within targetRetryMs, is still reached', { timeout: 10_000 }, async (t) => {
    const node = new StandInNode();
    const appPort = await freePort();
    let markArrived: () => void = () => {};
    const arrived = new Promise<void>((resolve) => (markArrived = resolve));
    const log = (line: string): void => {
      if (line.includes('/late')) markArrived();
    };
    const port = await startProxy(t, node, appPort, { targetRetryMs: 5_000, debug: true, log });
    const answer = send(port, 'GET', '/late?x=1');
    await arrived;
    // The proxy is now dialing a port nothing listens on; the app comes up a little later.
    await new Promise((resolve) => setTimeout(resolve, 150));
    const app = await startApp(t, okApp, appPort);
    const res = await answer;
    assert.equal(res.status, 200);
    assert.equal(res.text, 'app\n');
    assert.equal(app.seen[0]?.url, '/late?x=1');
  });

  test('a streamed answer (server-sent events) reaches the client as it is written', { timeout: 10_000 }, async (t) => {
    let finish: (() => void) | undefined;
    const app = await startApp(t, (_req, _body, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      res.write('data: first\n\n');
      finish = () => res.end('data: second\n\n');
    });
    const node = new StandInNode();
    const port = await startProxy(t, node, app.port);
    const { res, firstChunk } = await new Promise<{ res: IncomingMessage; firstChunk: string }>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port, path: '/events', agent: false }, (res) => {
        res.once('data', (c: Buffer) => {
          res.pause();
          resolve({ res, firstChunk: c.toString() });
        });
      });
      req.on('error', reject);
      req.end();
    });
    // Only now does the app end its answer: the first chunk came while it was still open.
    assert.equal(res.headers['content-type'], 'text/event-stream');
    assert.equal(firstChunk, 'data: first\n\n');
    assert.ok(finish !== undefined);
    const rest: Buffer[] = [];
    res.on('data', (c: Buffer) => rest.push(c));
    const ended = new Promise((resolve) => res.on('end', resolve));
    res.resume();
    finish();
    await ended;
    assert.equal(Buffer.concat(rest).toString(), 'data: second\n\n');
  });

  test('a client that goes away while the app is answering leaves the proxy serving', { timeout: 10_000 }, async (t) => {
    let release: (() => void) | undefined;
    let markArrived: () => void = () => {};
    const arrived = new Promise<void>((resolve) => (markArrived = resolve));
    const app = await startApp(t, (req, _body, res) => {
      if (req.url !== '/slow') return void res.end('app\n');
      release = () => res.end('late');
      markArrived();
    });
    const node = new StandInNode();
    node.txids.set(DB, 1n);
    const port = await startProxy(t, node, app.port);

    const gone = new Promise<void>((resolve) => {
      const req = httpRequest({ host: '127.0.0.1', port, method: 'POST', path: '/slow', agent: false });
      req.on('error', () => resolve());
      req.on('close', () => resolve());
      req.end('x');
      void arrived.then(() => req.destroy());
    });
    await gone;
    await new Promise((resolve) => setTimeout(resolve, 50));
    release?.();
    await new Promise((resolve) => setTimeout(resolve, 50));

    const res = await send(port, 'POST', '/next', { body: 'y' });
    assert.equal(res.status, 200);
    assert.equal(res.text, 'app\n');
  });
});

describe('protocol upgrades (WebSocket)', () => {
  /** An app that switches to an echo protocol on any upgrade. */
  async function startEchoApp(t: TestContext): Promise<App & { upgrades: IncomingHttpHeaders[] }> {
    const app = await startApp(t);
    const upgrades: IncomingHttpHeaders[] = [];
    app.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      upgrades.push(req.headers);
      socket.on('error', () => {});
      socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: test\r\nConnection: Upgrade\r\n\r\n');
      if (head.length > 0) socket.write(head);
      socket.on('data', (d: Buffer) => socket.write(d));
    });
    return { ...app, upgrades };
  }

  function upgrade(port: number, path: string, headers: Record<string, string> = {}, host = '127.0.0.1'): Promise<{ res: IncomingMessage; socket: Socket; head: Buffer }> {
    return new Promise((resolve, reject) => {
      const req = httpRequest({ host, port, path, agent: false, headers: { Connection: 'Upgrade', Upgrade: 'test', ...headers } });
      req.on('upgrade', (res: IncomingMessage, socket: Socket, head: Buffer) => resolve({ res, socket, head }));
      req.on('response', (res: IncomingMessage) => reject(new Error(`no upgrade: ${res.statusCode}`)));
      req.on('error', reject);
      req.end();
    });
  }

  /** An upgrade request the proxy answers itself (no 101). */
  function refusedUpgrade(port: number, path: string, headers: Record<string, string> = {}): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port, path, agent: false, headers: { Connection: 'Upgrade', Upgrade: 'test', ...headers } });
      req.on('upgrade', () => reject(new Error('upgraded')));
      req.on('response', (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const body = Buffer.concat(chunks);
          resolve({ status: res.statusCode ?? 0, statusMessage: res.statusMessage ?? '', headers: res.headers, body, text: body.toString() });
        });
      });
      req.on('error', reject);
      req.end();
    });
  }

  function echo(socket: Socket, head: Buffer, text: string): Promise<string> {
    return new Promise((resolve, reject) => {
      let got = head.toString();
      const onData = (d: Buffer): void => {
        got += d.toString();
        if (got.length >= text.length) {
          socket.off('data', onData);
          resolve(got);
        }
      };
      socket.on('data', onData);
      socket.on('error', reject);
      socket.write(text);
    });
  }

  test('an upgrade gets 101 from the app and the bytes are tunnelled both ways', { timeout: 10_000 }, async (t) => {
    const app = await startEchoApp(t);
    const node = new StandInNode();
    const port = await startProxy(t, node, app.port);
    const { res, socket, head } = await upgrade(port, '/ws?room=1', { 'x-custom': 'u' });
    t.after(() => socket.destroy());
    assert.equal(res.statusCode, 101);
    assert.equal(res.headers.upgrade, 'test');
    assert.equal(await echo(socket, head, 'ping'), 'ping');
    assert.equal(app.upgrades.length, 1);
    assert.equal(app.upgrades[0]!['x-custom'], 'u');
    assert.equal(app.upgrades[0]!.upgrade, 'test');
  });

  test('an upgrade whose cookie TXID is never reached gets 504 Proxy timeout', async (t) => {
    const app = await startEchoApp(t);
    const node = StandInNode.replica();
    node.txids.set(DB, 1n);
    const port = await startProxy(t, node, app.port, { readWaitMs: 150 });
    const res = await refusedUpgrade(port, '/ws', { cookie: cookieFor(2n) });
    assert.equal(res.status, 504);
    assert.equal(res.text, 'Proxy timeout\n');
    assert.equal(app.upgrades.length, 0);
  });

  test('an upgrade on an always-forward path of a replica is tunnelled through the primary proxy, marked forwarded', { timeout: 10_000 }, async (t) => {
    const primaryApp = await startEchoApp(t);
    const primaryNode = new StandInNode();
    const port = await startProxy(t, primaryNode, primaryApp.port, { alwaysForward: ['/ws/*'] });

    const replicaApp = await startEchoApp(t);
    const replicaNode = StandInNode.replica('p');
    await startProxy(t, replicaNode, replicaApp.port, { host: '127.0.0.2', port, alwaysForward: ['/ws/*'] });

    const { res, socket, head } = await upgrade(port, '/ws/room', {}, '127.0.0.2');
    t.after(() => socket.destroy());
    assert.equal(res.statusCode, 101);
    assert.equal(await echo(socket, head, 'hello primary'), 'hello primary');
    assert.equal(replicaApp.upgrades.length, 0);
    assert.equal(primaryApp.upgrades.length, 1);
    assert.equal(primaryApp.upgrades[0]![FORWARDED_HEADER], '1');
  });

  test("an upgrade on an always-forward path of a replica with writes: 'fly-replay' gets the fly-replay answer", async (t) => {
    const app = await startEchoApp(t);
    const node = StandInNode.replica('primary-host');
    const port = await startProxy(t, node, app.port, { alwaysForward: ['/ws/*'], writes: 'fly-replay' });
    const res = await refusedUpgrade(port, '/ws/room');
    assert.equal(res.status, 200);
    assert.equal(res.headers['fly-replay'], 'instance=primary-host');
    assert.equal(res.text, '');
    assert.equal(app.upgrades.length, 0);
  });

  test('an upgrade on a replica with no known primary, on an always-forward path, gets 503 no primary available', async (t) => {
    const app = await startEchoApp(t);
    const node = StandInNode.replica();
    const port = await startProxy(t, node, app.port, { alwaysForward: ['/ws/*'] });
    const res = await refusedUpgrade(port, '/ws/room');
    assert.equal(res.status, 503);
    assert.equal(res.text, 'Proxy error: no primary available\n');
  });

  test('an upgrade of the health path is refused with 400', async (t) => {
    const app = await startEchoApp(t);
    const node = new StandInNode();
    const port = await startProxy(t, node, app.port);
    const res = await refusedUpgrade(port, '/litefs/health');
    assert.equal(res.status, 400);
    assert.equal(app.upgrades.length, 0);
  });

  test('an upgrade to an app that is not listening gets 502 Proxy error', async (t) => {
    const node = new StandInNode();
    const port = await startProxy(t, node, await freePort(), { targetRetryMs: 150 });
    const res = await refusedUpgrade(port, '/ws');
    assert.equal(res.status, 502);
    assert.ok(res.text.startsWith('Proxy error:'), res.text);
  });

  test(
    'an upgrade whose client leaves while it waits for its cookie is dropped without waiting out readWaitMs',
    { timeout: 10_000 },
    async (t) => {
      const app = await startEchoApp(t);
      const node = StandInNode.replica();
      node.txids.set(DB, 1n);
      const port = await startProxy(t, node, app.port, { readWaitMs: 500 });
      const req = httpRequest({ host: '127.0.0.1', port, path: '/ws', agent: false, headers: { Connection: 'Upgrade', Upgrade: 'test', cookie: cookieFor(2n) } });
      req.on('error', () => {});
      req.end();
      while (node.changedCalls === 0) await new Promise((resolve) => setTimeout(resolve, 10));
      const callsWhenLeft = node.changedCalls;
      req.destroy();
      await new Promise((resolve) => setTimeout(resolve, 400));
      // Each look at the node is at most 100 ms apart; a proxy that noticed stops looking.
      assert.ok(node.changedCalls <= callsWhenLeft + 1, `still waiting: ${node.changedCalls - callsWhenLeft} more looks at the node`);
    },
  );

  test(
    'close() cuts an upgrade still waiting for its cookie',
    { timeout: 10_000 },
    async (t) => {
      const app = await startEchoApp(t);
      const node = StandInNode.replica();
      node.txids.set(DB, 1n);
      const proxy = new ProxyServer(node, proxyOptions(app.port, { readWaitMs: 500 }));
      const { port } = await proxy.listen();
      const outcome = new Promise<string>((resolve) => {
        const req = httpRequest({ host: '127.0.0.1', port, path: '/ws', agent: false, headers: { Connection: 'Upgrade', Upgrade: 'test', cookie: cookieFor(2n) } });
        req.on('upgrade', () => resolve('upgraded'));
        req.on('response', (res: IncomingMessage) => resolve(`answered ${res.statusCode}`));
        req.on('error', () => resolve('cut'));
        req.end();
      });
      while (node.changedCalls === 0) await new Promise((resolve) => setTimeout(resolve, 10));
      await proxy.close();
      assert.equal(await outcome, 'cut', 'close() waited for the upgrade to time out and answer');
    },
  );

  test('close() cuts open WebSocket tunnels too', { timeout: 10_000 }, async (t) => {
    const app = await startEchoApp(t);
    const node = new StandInNode();
    const proxy = new ProxyServer(node, proxyOptions(app.port));
    let closed = false;
    t.after(async () => {
      if (!closed) await proxy.close();
    });
    const { port } = await proxy.listen();
    const { socket, head } = await upgrade(port, '/ws');
    t.after(() => socket.destroy());
    assert.equal(await echo(socket, head, 'ping'), 'ping');
    const clientClosed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    await proxy.close();
    closed = true;
    await clientClosed;
  });
});
