import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { type Cluster, readPos, startRelayedPair, waitConverged } from '../helpers/cluster.js';
import { type LiteFSDaemonOptions, freePort } from '../helpers/litefs-daemon.js';
import { skipUnless } from '../helpers/prereq.js';
import { expectSuccess, program, runSqlite3 } from '../helpers/sqlite-client.js';
import { TcpRelay } from '../helpers/tcp-relay.js';

/**
 * The HTTP proxy (`proxy:` in litefs.yml) on a static cluster of a primary
 * and a replica. Each node runs a small Python web application
 * (test/programs/proxy-app.py, started by litefs's `exec` once the node is
 * ready) that keeps rows in app.db in its mount; clients talk only to the
 * proxies. Both proxies listen on one port, the primary's on 127.0.0.1 and
 * the replica's on 127.0.0.2, as nodes on their own hosts would: a replica
 * forwards writes to the primary's proxy at the host of the primary's
 * advertise URL and its own proxy port. The replica follows the primary
 * through a TCP relay the test can cut (the proxies talk directly).
 */
const skip = skipUnless(['root', 'fuse', 'sqlite3', 'python3-sqlite']);

const DB = 'app.db';

interface Answer {
  readonly status: number;
  readonly body: string;
  readonly cookies: string[];
  /** Which node's application answered (X-App-Port). */
  readonly appPort: number;
}

async function call(url: string, init: RequestInit = {}): Promise<Answer> {
  const res = await fetch(url, { ...init, redirect: 'manual' });
  return { status: res.status, body: await res.text(), cookies: res.headers.getSetCookie(), appPort: Number(res.headers.get('x-app-port')) };
}

/** The `__txid=...` pair of a write's answer, for the next request's Cookie header. */
function txidCookie(answer: Answer): string {
  const set = answer.cookies.find((c) => c.startsWith('__txid='));
  assert.ok(set !== undefined, `no __txid cookie in ${JSON.stringify(answer)}`);
  return set.split(';', 1)[0]!;
}

describe('proxy: read-your-writes through a replica, writes forwarded to the primary', { skip }, () => {
  let cluster: Cluster;
  let relay: TcpRelay;
  let primaryProxy: string;
  let replicaProxy: string;
  const appPorts: number[] = [];

  before(async () => {
    const port = await freePort();
    appPorts.push(await freePort(), await freePort());
    const node = (host: string, appPort: number): LiteFSDaemonOptions => ({
      topLines: ['proxy:', `  addr: "${host}:${port}"`, `  target: "127.0.0.1:${appPort}"`, `  db: "${DB}"`, '  passthrough: ["/static/*"]'],
      exec: [`python3 ${program('proxy-app.py')} ${appPort} $MNT/${DB}`],
    });
    relay = await TcpRelay.start();
    cluster = await startRelayedPair(relay, node('127.0.0.1', appPorts[0]!), node('127.0.0.2', appPorts[1]!));
    primaryProxy = `http://127.0.0.1:${port}`;
    replicaProxy = `http://127.0.0.2:${port}`;
    expectSuccess('create table', await runSqlite3(join(cluster.primary.mnt, DB), 'PRAGMA journal_mode=wal; CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);'));
    await waitConverged(cluster, DB);
  });
  after(async () => {
    await cluster?.close();
    await relay?.close();
  });

  test('/litefs/health answers OK on both nodes', async () => {
    for (const url of [primaryProxy, replicaProxy]) {
      const res = await call(`${url}/litefs/health`);
      assert.deepEqual([res.status, res.body], [200, 'OK\n'], url);
    }
  });

  test("a write through the primary's proxy sets __txid to the database's TXID after that write", async () => {
    for (let i = 0; i < 5; i++) {
      const res = await call(`${primaryProxy}/rows`, { method: 'POST', body: `primary ${i}` });
      assert.equal(res.status, 200, res.body);
      const pos = await readPos(cluster.primary, DB);
      assert.equal(txidCookie(res), `__txid=${pos.split('/')[0]}`, `cookie against ${DB}-pos ${pos}`);
    }
  });

  test("writes sent to the replica run on the primary's application, and a read through the replica right after sees each one", async () => {
    for (let i = 0; i < 25; i++) {
      const wrote = await call(`${replicaProxy}/rows`, { method: 'POST', body: `via replica ${i}` });
      assert.deepEqual([wrote.status, wrote.appPort], [200, appPorts[0]], `write ${i} through the replica: ${wrote.body}`);
      const { id } = JSON.parse(wrote.body) as { id: number };
      const read = await call(`${replicaProxy}/rows/${id}`, { headers: { cookie: txidCookie(wrote) } });
      assert.equal(read.appPort, appPorts[1], 'reads are served by the local application');
      assert.deepEqual([read.status, JSON.parse(read.body)], [200, { id, v: `via replica ${i}` }], `read of row ${id} after write ${i}`);
    }
    const onPrimary = expectSuccess('count', await runSqlite3(join(cluster.primary.mnt, DB), "SELECT count(*) FROM t WHERE v LIKE 'via replica %';"));
    assert.equal(onPrimary.trim(), '25');
  });

  test("a read carrying a write's cookie waits until the replica has that write (replication cut, then healed)", async () => {
    relay.cut();
    try {
      const wrote = await call(`${primaryProxy}/rows`, { method: 'POST', body: 'while cut' });
      assert.equal(wrote.status, 200, wrote.body);
      const { id } = JSON.parse(wrote.body) as { id: number };
      const stale = await call(`${replicaProxy}/rows/${id}`);
      assert.equal(stale.status, 404, 'without the cookie the cut-off replica answers from its own, older data');
      const fresh = call(`${replicaProxy}/rows/${id}`, { headers: { cookie: txidCookie(wrote) } });
      setTimeout(() => relay.heal(), 300);
      const read = await fresh;
      assert.deepEqual([read.status, JSON.parse(read.body)], [200, { id, v: 'while cut' }]);
    } finally {
      relay.heal();
    }
  });

  test('a read whose cookie is ahead of anything the cluster has waits 5 s, then answers 504', async () => {
    const res = await call(`${replicaProxy}/rows`, { headers: { cookie: '__txid=00000000ffffffff' } });
    assert.deepEqual([res.status, res.body], [504, 'Proxy timeout\n']);
  });

  test('a passthrough path goes to the local application with no cookie, even for a write', async () => {
    const res = await call(`${replicaProxy}/static/x`, { method: 'POST', body: 'x' });
    assert.deepEqual([res.status, res.appPort, res.cookies], [404, appPorts[1], []]);
  });
});
