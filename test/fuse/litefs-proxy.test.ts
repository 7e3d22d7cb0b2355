import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { type LiteFSDaemon, freePort, startLiteFS } from '../helpers/litefs-daemon.js';
import { skipUnless } from '../helpers/prereq.js';
import { expectSuccess, program, runSqlite3 } from '../helpers/sqlite-client.js';

/**
 * The HTTP proxy on a lone primary (the cluster suite covers replicas):
 * with no replica streaming and nobody on /events, the FUSE thread sends
 * commits to the main thread in windows (fs/event-outbox.ts), yet each
 * write's `__txid` cookie must name the TXID of that very write.
 */
const skip = skipUnless(['root', 'fuse', 'sqlite3', 'python3-sqlite']);

const DB = 'app.db';

describe('litefs mount: proxy on a single primary', { skip }, () => {
  let daemon: LiteFSDaemon;
  let proxy: string;

  before(async () => {
    const port = await freePort();
    const appPort = await freePort();
    daemon = await startLiteFS({
      topLines: ['proxy:', `  addr: "127.0.0.1:${port}"`, `  target: "127.0.0.1:${appPort}"`, `  db: "${DB}"`, '  max-lag: 1s'],
      exec: [`python3 ${program('proxy-app.py')} ${appPort} $MNT/${DB}`],
    });
    proxy = `http://127.0.0.1:${port}`;
    expectSuccess('create table', await runSqlite3(join(daemon.mnt, DB), 'PRAGMA journal_mode=wal; CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);'));
  });
  after(async () => {
    await daemon?.close();
  });

  test('every write in a quick run gets a cookie with the TXID of its own commit', async () => {
    for (let i = 0; i < 30; i++) {
      const res = await fetch(`${proxy}/rows`, { method: 'POST', body: `row ${i}` });
      assert.equal(res.status, 200, await res.text());
      const cookie = res.headers.getSetCookie().find((c) => c.startsWith('__txid='));
      const pos = (await readFile(join(daemon.mnt, `${DB}-pos`), 'utf8')).trim();
      assert.equal(cookie?.split(';', 1)[0], `__txid=${pos.split('/')[0]}`, `write ${i}: cookie ${cookie} against ${DB}-pos ${pos}`);
      assert.match(cookie ?? '', /; Path=\/; Expires=[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT; HttpOnly$/);
    }
  });

  test("a read with the primary's own latest cookie is served at once; health is OK (lag 0 on a primary)", async () => {
    const wrote = await fetch(`${proxy}/rows`, { method: 'POST', body: 'last' });
    const cookie = wrote.headers.getSetCookie()[0]!.split(';', 1)[0]!;
    const { id } = (await wrote.json()) as { id: number };
    const read = await fetch(`${proxy}/rows/${id}`, { headers: { cookie } });
    assert.deepEqual([read.status, await read.json()], [200, { id, v: 'last' }]);
    const health = await fetch(`${proxy}/litefs/health`);
    assert.deepEqual([health.status, await health.text()], [200, 'OK\n']);
  });
});

describe('litefs mount: proxy start-up failure', { skip }, () => {
  let taken: Server;
  before(async () => {
    taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  });
  after(async () => {
    await new Promise((resolve) => taken.close(resolve));
  });

  test('a proxy address in use stops litefs with exit 1 (exit-on-error) and the application never starts', async () => {
    const port = (taken.address() as { port: number }).port;
    const daemon = await startLiteFS({
      topLines: ['proxy:', `  addr: "127.0.0.1:${port}"`, '  target: "127.0.0.1:1"', `  db: "${DB}"`],
      exec: ['sh -c "echo started; sleep 30"'],
    });
    try {
      const code = await Promise.race([daemon.exited(), new Promise((r) => setTimeout(() => r('timeout'), 15_000))]);
      assert.equal(code, 1, daemon.output());
      assert.match(daemon.output(), /ERROR: proxy: listen EADDRINUSE/);
      assert.doesNotMatch(daemon.output(), /started/);
    } finally {
      await daemon.close().catch(() => undefined);
    }
  });
});
