import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { isPrimary, waitFor } from '../helpers/cluster.js';
import { type Etcd, etcdLeaseLines, startEtcd } from '../helpers/etcd.js';
import { type LiteFSDaemon, freePort, startLiteFS } from '../helpers/litefs-daemon.js';
import { skipUnless } from '../helpers/prereq.js';
import { expectSuccess, program, runSqlite3 } from '../helpers/sqlite-client.js';

/**
 * The proxy across a failover: three etcd candidates, each with its own
 * loopback address (127.0.0.1–3, standing for three hosts: node API and
 * proxy, both proxies on one port) and its own Python application
 * (test/programs/proxy-app.py, started by the test so that a node killed
 * with SIGKILL does not leave it running). Writes sent to a replica's proxy
 * reach whichever node is primary now, and reads with the write's cookie
 * see them.
 */
const skip = skipUnless(['root', 'fuse', 'sqlite3', 'python3-sqlite', 'etcd']);

const DB = 'app.db';

interface Node {
  readonly daemon: LiteFSDaemon;
  readonly proxyURL: string;
  readonly appPort: number;
}

interface Answer {
  readonly status: number;
  readonly body: string;
  readonly cookie: string;
  readonly appPort: number;
}

async function call(url: string, init: RequestInit = {}): Promise<Answer> {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(20_000) });
  const cookie = res.headers.getSetCookie().find((c) => c.startsWith('__txid='))?.split(';', 1)[0] ?? '';
  return { status: res.status, body: await res.text(), cookie, appPort: Number(res.headers.get('x-app-port')) };
}


describe('proxy across an etcd failover', { skip }, () => {
  let etcd: Etcd;
  const nodes: Node[] = [];
  const apps: ChildProcess[] = [];

  before(async () => {
    etcd = await startEtcd();
    const key = `litefs-test/${randomBytes(4).toString('hex')}`;
    const proxyPort = await freePort();
    for (let i = 1; i <= 3; i++) {
      const host = `127.0.0.${i}`;
      const appPort = await freePort();
      const daemon = await startLiteFS({
        httpHost: host,
        topLines: ['proxy:', `  addr: "${host}:${proxyPort}"`, `  target: "127.0.0.1:${appPort}"`, `  db: "${DB}"`],
        leaseLines: etcdLeaseLines(etcd, key, `n${i}`),
      });
      nodes.push({ daemon, proxyURL: `http://${host}:${proxyPort}`, appPort });
      const app = spawn('python3', [program('proxy-app.py'), String(appPort), join(daemon.mnt, DB)], { stdio: ['ignore', 'pipe', 'inherit'] });
      apps.push(app);
      await new Promise<void>((resolve, reject) => {
        app.once('exit', (code) => reject(new Error(`proxy-app.py exited ${code}`)));
        app.stdout!.once('data', () => resolve());
      });
    }
  });
  after(async () => {
    for (const app of apps) app.kill('SIGKILL');
    for (const n of nodes) await n.daemon.close().catch(() => undefined);
    await etcd?.stop();
  });

  async function primaryOf(candidates: Node[]): Promise<Node> {
    let found: Node | undefined;
    await waitFor(
      () => 'one primary among the running nodes',
      async () => {
        const flags = await Promise.all(candidates.map((n) => isPrimary(n.daemon)));
        found = flags.filter((f) => f === true).length === 1 ? candidates[flags.indexOf(true)] : undefined;
        return found !== undefined;
      },
      60_000,
      candidates.map((n) => n.daemon),
    );
    return found!;
  }

  /** POSTs a row through `via`'s proxy (retried while the cluster has no primary), then reads it back there with the cookie. */
  async function writeAndRead(via: Node, value: string, primary: Node): Promise<void> {
    let wrote: Answer | undefined;
    await waitFor(
      () => `a write through ${via.proxyURL} to succeed (last: ${JSON.stringify(wrote)})`,
      async () => {
        wrote = await call(`${via.proxyURL}/rows`, { method: 'POST', body: value }).catch((err: Error) => ({ status: 0, body: err.message, cookie: '', appPort: 0 }));
        return wrote.status === 200;
      },
      60_000,
      nodes.map((n) => n.daemon),
    );
    assert.equal(wrote!.appPort, primary.appPort, `the write ran on the primary's application (${primary.proxyURL})`);
    assert.match(wrote!.cookie, /^__txid=[0-9a-f]{16}$/);
    const { id } = JSON.parse(wrote!.body) as { id: number };
    const read = await call(`${via.proxyURL}/rows/${id}`, { headers: { cookie: wrote!.cookie } });
    assert.deepEqual([read.status, read.appPort, JSON.parse(read.body)], [200, via.appPort, { id, v: value }], `read through ${via.proxyURL}`);
  }

  test('writes through a replica follow the primary when it dies; reads with the cookie see them', async () => {
    const first = await primaryOf(nodes);
    expectSuccess('create table', await runSqlite3(join(first.daemon.mnt, DB), 'PRAGMA journal_mode=wal; CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);'));
    const replicas = nodes.filter((n) => n !== first);
    for (const r of replicas) await writeAndRead(r, `before, via ${r.proxyURL}`, first);

    await first.daemon.kill();
    const second = await primaryOf(replicas);
    const last = replicas.find((n) => n !== second)!;
    await writeAndRead(last, 'after the failover', second);
    await writeAndRead(second, 'on the new primary itself', second);
  });
});
