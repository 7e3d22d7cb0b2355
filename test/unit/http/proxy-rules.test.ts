/**
 * The HTTP proxy's pure rules: LiteFS's path globs (passthrough and
 * always-forward), the `__txid` cookie, which way a request goes, the
 * request path the rules see, and which headers are passed on to the next
 * hop.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { compileGlob, matchesAny } from '../../../src/http/proxy/glob.js';
import { TXID_COOKIE, TXID_COOKIE_TTL_MS, readTXIDCookie, txidSetCookie } from '../../../src/http/proxy/txid-cookie.js';
import { HEALTH_PATH, requestPath, routeRequest, type RouteRules } from '../../../src/http/proxy/route.js';
import { createServer, type AddressInfo } from 'node:net';
import { dial, endToEndHeaders } from '../../../src/http/proxy/upstream.js';

function matches(pattern: string, path: string): boolean {
  return compileGlob(pattern).test(path);
}

describe('path globs (LiteFS CompileMatch)', () => {
  test('`/build/*` matches `/build/` and anything below it, `/` included, but not `/build`', () => {
    assert.equal(matches('/build/*', '/build/'), true);
    assert.equal(matches('/build/*', '/build/foo'), true);
    assert.equal(matches('/build/*', '/build/foo/bar'), true);
    assert.equal(matches('/build/*', '/build'), false);
    assert.equal(matches('/build/*', '/builds/foo'), false);
  });

  test('`*.png` matches a .png file in any directory', () => {
    assert.equal(matches('*.png', '/images/pic.png'), true);
    assert.equal(matches('*.png', '/pic.png'), true);
    assert.equal(matches('*.png', '/images/pic.png/x'), false);
    assert.equal(matches('*.png', '/images/pic.jpg'), false);
  });

  test('the whole path must match: no prefix or suffix matches', () => {
    assert.equal(matches('/api', '/api'), true);
    assert.equal(matches('/api', '/api/x'), false);
    assert.equal(matches('/api', '/v1/api'), false);
  });

  test('several stars each match any run, the empty one too', () => {
    assert.equal(matches('/a/*/b/*', '/a/x/y/b/z'), true);
    assert.equal(matches('/a/*/b/*', '/a//b/'), true);
    assert.equal(matches('*', '/anything/at/all'), true);
    assert.equal(matches('*', ''), true);
  });

  test('regex metacharacters are literal: `^/my/path$` matches only the literal string `^/my/path$`', () => {
    assert.equal(matches('^/my/path$', '^/my/path$'), true);
    assert.equal(matches('^/my/path$', '/my/path'), false);
  });

  test('`.` is literal: `/a.b` matches `/a.b` but not `/aXb`', () => {
    assert.equal(matches('/a.b', '/a.b'), true);
    assert.equal(matches('/a.b', '/aXb'), false);
  });

  test('every other regex metacharacter is literal too', () => {
    for (const literal of ['/a+b', '/a?b', '/(a)', '/[ab]', '/{1,2}', '/a|b', '/a\\b', '/a-b']) {
      assert.equal(matches(literal, literal), true, literal);
    }
    assert.equal(matches('/a+b', '/aab'), false);
    assert.equal(matches('/a?b', '/b'), false);
    assert.equal(matches('/[ab]', '/a'), false);
    assert.equal(matches('/a|b', '/a'), false);
  });

  test('a star matches a newline as well (a decoded %0A in the path)', () => {
    assert.equal(matches('/x/*', '/x/a\nb'), true);
  });

  test('matchesAny is true when one of the globs matches, false for none or no globs', () => {
    const globs = ['/static/*', '*.css'].map(compileGlob);
    assert.equal(matchesAny(globs, '/static/app.js'), true);
    assert.equal(matchesAny(globs, '/theme/site.css'), true);
    assert.equal(matchesAny(globs, '/api/items'), false);
    assert.equal(matchesAny([], '/static/app.js'), false);
  });
});

describe('the __txid cookie', () => {
  test('the cookie is named __txid', () => {
    assert.equal(TXID_COOKIE, '__txid');
  });

  test('a value of exactly 16 hex digits is the TXID, either case', () => {
    assert.equal(readTXIDCookie('__txid=00000000000000ff'), 255n);
    assert.equal(readTXIDCookie('__txid=00000000000000FF'), 255n);
    assert.equal(readTXIDCookie('__txid=ffffffffffffffff'), 0xffffffffffffffffn);
    assert.equal(readTXIDCookie('__txid=0000000000000001'), 1n);
  });

  test('no Cookie header, no __txid cookie, or an invalid value means 0n', () => {
    assert.equal(readTXIDCookie(undefined), 0n);
    assert.equal(readTXIDCookie(''), 0n);
    assert.equal(readTXIDCookie('a=1; b=2'), 0n);
    assert.equal(readTXIDCookie('__txid=ff'), 0n, 'short');
    assert.equal(readTXIDCookie('__txid=000000000000000ff'), 0n, '17 digits');
    assert.equal(readTXIDCookie('__txid=00000000000000zz'), 0n, 'not hex');
    assert.equal(readTXIDCookie('__txid=0x000000000000ff'), 0n, '0x prefix');
    assert.equal(readTXIDCookie('__txid=-000000000000ff'), 0n, 'sign');
    assert.equal(readTXIDCookie('__txid='), 0n, 'empty');
    assert.equal(readTXIDCookie('__txid'), 0n, 'no value');
  });

  test('__txid is picked out among other cookies', () => {
    assert.equal(readTXIDCookie('a=1; __txid=00000000000000ff; b=2'), 255n);
    assert.equal(readTXIDCookie('a=1;__txid=00000000000000ff;b=2'), 255n);
  });

  test('a cookie whose name merely contains __txid is not it', () => {
    assert.equal(readTXIDCookie('x__txid=00000000000000ff; __txidx=00000000000000ff'), 0n);
  });

  test('of duplicate __txid cookies the first counts (Go http.Request.Cookie)', () => {
    assert.equal(readTXIDCookie('__txid=0000000000000001; __txid=0000000000000002'), 1n);
    assert.equal(readTXIDCookie('__txid=zz; __txid=0000000000000002'), 0n);
  });

  test('a double-quoted value is unquoted, as Go reads cookies', () => {
    assert.equal(readTXIDCookie('__txid="00000000000000ff"'), 255n);
  });

  test('Set-Cookie is `__txid=<16 lower-case hex>; Path=/; Expires=<now + 5 min, UTC>; HttpOnly`', () => {
    const now = Date.UTC(2026, 0, 2, 3, 4, 5, 678);
    const expires = new Date(now + 5 * 60_000).toUTCString();
    assert.equal(expires, 'Fri, 02 Jan 2026 03:09:05 GMT');
    assert.equal(TXID_COOKIE_TTL_MS, 5 * 60_000);
    assert.equal(txidSetCookie(255n, now), `__txid=00000000000000ff; Path=/; Expires=${expires}; HttpOnly`);
    assert.equal(txidSetCookie(0xabcdef0123456789n, now), `__txid=abcdef0123456789; Path=/; Expires=${expires}; HttpOnly`);
    assert.equal(txidSetCookie(0n, now), `__txid=0000000000000000; Path=/; Expires=${expires}; HttpOnly`);
  });

  test('the cookie set after a write reads back as the same TXID', () => {
    const set = txidSetCookie(0x1234n, Date.now());
    const pair = set.split(';', 1)[0]!;
    assert.equal(readTXIDCookie(`other=1; ${pair}`), 0x1234n);
  });
});

describe('which way a request goes', () => {
  const none: RouteRules = { passthrough: [], alwaysForward: [] };
  const rules: RouteRules = {
    passthrough: ['/static/*', '/litefs/*'].map(compileGlob),
    alwaysForward: ['/admin/*', '/static/forced'].map(compileGlob),
  };

  test('the health path is /litefs/health and the proxy answers it itself', () => {
    assert.equal(HEALTH_PATH, '/litefs/health');
    assert.equal(routeRequest('GET', '/litefs/health', none), 'health');
    assert.equal(routeRequest('HEAD', '/litefs/health', none), 'health');
    assert.equal(routeRequest('POST', '/litefs/health', none), 'health');
  });

  test('passthrough wins over everything, the health path and always-forward included', () => {
    assert.equal(routeRequest('GET', '/litefs/health', rules), 'passthrough');
    assert.equal(routeRequest('GET', '/static/app.js', rules), 'passthrough');
    assert.equal(routeRequest('POST', '/static/upload', rules), 'passthrough');
    assert.equal(routeRequest('GET', '/static/forced', rules), 'passthrough');
  });

  test('GET and HEAD are reads', () => {
    assert.equal(routeRequest('GET', '/', none), 'read');
    assert.equal(routeRequest('HEAD', '/items/1', none), 'read');
    assert.equal(routeRequest('GET', '/items', rules), 'read');
  });

  test('GET and HEAD on an always-forward path are writes', () => {
    assert.equal(routeRequest('GET', '/admin/stats', rules), 'write');
    assert.equal(routeRequest('HEAD', '/admin/', rules), 'write');
    assert.equal(routeRequest('GET', '/admin', rules), 'read');
  });

  test('every other method is a write', () => {
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
      assert.equal(routeRequest(method, '/items/1', none), 'write', method);
    }
  });
});

describe('the request path the rules see', () => {
  test('percent escapes are decoded', () => {
    assert.equal(requestPath('/a%20b'), '/a b');
    assert.equal(requestPath('/caf%C3%A9'), '/café');
  });

  test('the query is dropped', () => {
    assert.equal(requestPath('/a%20b?x=1&y=%20'), '/a b');
    assert.equal(requestPath('/items?'), '/items');
    assert.equal(requestPath('/'), '/');
  });

  test('a bad escape leaves the path as it came', () => {
    assert.equal(requestPath('/%zz'), '/%zz');
    assert.equal(requestPath('/%zz?q=1'), '/%zz');
  });

  test('an absolute-form target is reduced to its path', () => {
    assert.equal(requestPath('http://example.com/a%20b?x=1'), '/a b');
  });
});

describe('headers passed on to the next hop', () => {
  test('hop-by-hop headers are dropped; host, cookie, content-length and custom headers are kept', () => {
    const out = endToEndHeaders({
      host: 'app.example',
      cookie: '__txid=00000000000000ff',
      'content-length': '5',
      'content-type': 'text/plain',
      'x-custom': 'yes',
      'set-cookie': ['a=1', 'b=2'],
      connection: 'keep-alive',
      'keep-alive': 'timeout=5',
      'transfer-encoding': 'chunked',
      upgrade: 'websocket',
      te: 'trailers',
      trailer: 'x-checksum',
      'proxy-connection': 'keep-alive',
      'proxy-authorization': 'Basic Zm9vOmJhcg==',
      'proxy-authenticate': 'Basic',
    });
    assert.deepEqual(out, {
      host: 'app.example',
      cookie: '__txid=00000000000000ff',
      'content-length': '5',
      'content-type': 'text/plain',
      'x-custom': 'yes',
      'set-cookie': ['a=1', 'b=2'],
    });
  });

  test('headers named in Connection are dropped, whatever their case and spacing', () => {
    const out = endToEndHeaders({
      connection: 'close,  X-Private-One , x-private-two',
      'x-private-one': '1',
      'x-private-two': '2',
      'x-public': '3',
    });
    assert.deepEqual(out, { 'x-public': '3' });
  });

  test('no Connection header: only the fixed hop-by-hop set goes', () => {
    assert.deepEqual(endToEndHeaders({ 'x-a': '1', te: 'trailers' }), { 'x-a': '1' });
    assert.deepEqual(endToEndHeaders({}), {});
  });
});

describe('dialing the application', () => {
  /** A port nothing listens on: reserved, then closed again. */
  async function closedPort(): Promise<number> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    await new Promise((resolve) => server.close(resolve));
    return port;
  }

  test('a refused connection is tried again until the peer listens', async () => {
    const port = await closedPort();
    const dialing = dial('127.0.0.1', port, { refusedRetryMs: 30_000, retryEveryMs: 20 });
    const late = createServer((socket) => socket.destroy());
    await new Promise((resolve) => setTimeout(resolve, 60));
    await new Promise<void>((resolve) => late.listen(port, '127.0.0.1', resolve));
    try {
      const socket = await dialing;
      socket.destroy();
    } finally {
      await new Promise((resolve) => late.close(resolve));
    }
  });

  test('a refused connection fails once refusedRetryMs has passed (0: at once)', async () => {
    await assert.rejects(dial('127.0.0.1', await closedPort(), { refusedRetryMs: 0 }), /ECONNREFUSED/);
  });

  test('aborting stops a dial that keeps retrying (the proxy closing does not wait out the retry time)', { timeout: 5_000 }, async () => {
    const aborter = new AbortController();
    const dialing = dial('127.0.0.1', await closedPort(), { refusedRetryMs: 60_000, retryEveryMs: 20, signal: aborter.signal });
    setTimeout(() => aborter.abort(), 50);
    await assert.rejects(dialing);
  });
});
