import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readPos, waitFor } from '../helpers/cluster.js';
import { type Etcd, etcdLeaseLines, startEtcd } from '../helpers/etcd.js';
import { FaultProxy } from '../helpers/http-faults.js';
import { TcpRelay } from '../helpers/tcp-relay.js';
import { type LiteFSDaemon, startLiteFS } from '../helpers/litefs-daemon.js';
import { skipUnless } from '../helpers/prereq.js';
import { expectSuccess, runPython, runSqlite3 } from '../helpers/sqlite-client.js';

/**
 * Leader election with a real etcd (Debian etcd-server) and 2 s leases:
 * candidates elect one primary, fail over when it dies, hand off on
 * request, and an empty candidate never wins over one with data. Tests
 * assert safety and eventual success within generous deadlines; timings
 * are in the benchmark.
 */
const skip = skipUnless(['root', 'fuse', 'sqlite3', 'etcd']);

interface NodeInfoJSON {
  isPrimary: boolean;
  primary?: { hostname: string };
}

async function info(node: LiteFSDaemon): Promise<NodeInfoJSON | undefined> {
  if (!node.running) return undefined;
  try {
    return (await (await fetch(`${node.httpURL}/info`, { signal: AbortSignal.timeout(2000) })).json()) as NodeInfoJSON;
  } catch {
    return undefined;
  }
}

/** Waits until exactly one running node says it is primary and returns it. */
async function waitForPrimary(nodes: LiteFSDaemon[], not?: LiteFSDaemon): Promise<LiteFSDaemon> {
  let found: LiteFSDaemon | undefined;
  await waitFor(
    () => 'one primary among the running nodes',
    async () => {
      const primaries: LiteFSDaemon[] = [];
      for (const n of nodes) if (n !== not && (await info(n))?.isPrimary === true) primaries.push(n);
      found = primaries.length === 1 ? primaries[0] : undefined;
      return found !== undefined;
    },
    60_000,
    nodes,
  );
  return found!;
}

/** sqlite3 on `node`'s mount, retried while the node is not (yet) writable. */
async function write(node: LiteFSDaemon, db: string, sql: string): Promise<void> {
  let last = '';
  await waitFor(
    () => `a write on ${node.httpURL} to succeed (last: ${last})`,
    async () => {
      const r = await runSqlite3(join(node.mnt, db), sql, { timeoutMs: 30_000 });
      last = r.stderr.trim();
      return r.status === 0;
    },
    60_000,
    [node],
  );
}

async function waitSamePos(nodes: LiteFSDaemon[], db: string): Promise<void> {
  let seen: string[] = [];
  await waitFor(
    () => `${db} at one position on every node (seen ${seen.join(', ')})`,
    async () => {
      seen = await Promise.all(nodes.map((n) => readPos(n, db)));
      return seen[0] !== '' && seen.every((p) => p === seen[0]);
    },
    60_000,
    nodes,
  );
}

function epochOf(node: LiteFSDaemon): bigint {
  try {
    return BigInt(readFileSync(join(node.data, 'epoch'), 'utf8').trim());
  } catch {
    return 0n;
  }
}

describe('leases on etcd: election, failover, handoff', { skip }, () => {
  let etcd: Etcd;
  const nodes: LiteFSDaemon[] = [];
  before(async () => {
    etcd = await startEtcd();
  });
  after(async () => {
    for (const n of nodes) await n.close().catch(() => undefined);
    await etcd?.stop();
  });

  async function startNode(key: string, name: string, extra: string[] = []): Promise<LiteFSDaemon> {
    const node = await startLiteFS({ leaseLines: etcdLeaseLines(etcd, key, name, extra) });
    nodes.push(node);
    return node;
  }

  test('3 candidates: one primary; kill -9 of the primary → another accepts writes; the old one rejoins as a replica and converges', async () => {
    const key = `litefs-test/${randomBytes(4).toString('hex')}`;
    const group = [await startNode(key, 'n1'), await startNode(key, 'n2'), await startNode(key, 'n3')];
    const first = await waitForPrimary(group);
    await write(first, 'f.db', 'CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t(v) VALUES (\'before\');');
    await waitSamePos(group, 'f.db');

    await first.kill();
    const rest = group.filter((n) => n !== first);
    const second = await waitForPrimary(rest);
    assert.ok(epochOf(second) > epochOf(first), `the new term has a higher epoch (${epochOf(second)} > ${epochOf(first)})`);
    await write(second, 'f.db', "INSERT INTO t(v) VALUES ('after');");

    await first.start();
    await waitSamePos(group, 'f.db');
    for (const n of group) {
      const out = expectSuccess('select', await runSqlite3(join(n.mnt, 'f.db'), 'SELECT group_concat(v) FROM t; PRAGMA integrity_check;'));
      assert.equal(out.trim(), 'before,after\nok');
    }
    assert.equal((await info(first))?.isPrimary, false, 'the old primary rejoins as a replica');
  });

  test('POST /promote on a replica hands the lease over: a new epoch, writes continue there, nothing lost', async () => {
    const key = `litefs-test/${randomBytes(4).toString('hex')}`;
    const group = [await startNode(key, 'h1'), await startNode(key, 'h2')];
    const primary = await waitForPrimary(group);
    const other = group.find((n) => n !== primary)!;
    await write(primary, 'h.db', 'CREATE TABLE t(v); INSERT INTO t VALUES (1);');
    await waitSamePos(group, 'h.db');
    const before = epochOf(primary);

    const res = await fetch(`${other.httpURL}/promote`, { method: 'POST' });
    assert.equal(res.status, 200, await res.text());
    await waitFor(() => 'the promoted node to be primary', async () => (await info(other))?.isPrimary === true, 60_000, group);
    await waitFor(() => 'the old primary to be a replica', async () => (await info(primary))?.isPrimary === false, 60_000, group);
    assert.ok(epochOf(other) > before, `handoff makes a new epoch (${epochOf(other)} > ${before})`);

    await write(other, 'h.db', 'INSERT INTO t VALUES (2);');
    await waitSamePos(group, 'h.db');
    const out = expectSuccess('select', await runSqlite3(join(primary.mnt, 'h.db'), 'SELECT group_concat(v) FROM t;'));
    assert.equal(out.trim(), '1,2');
  });

  test('lease.promote: a candidate that joins a running cluster asks for the lease and becomes primary once caught up', async () => {
    const key = `litefs-test/${randomBytes(4).toString('hex')}`;
    const first = await startNode(key, 'lp1');
    await waitForPrimary([first]);
    await write(first, 'lp.db', 'CREATE TABLE t(v); INSERT INTO t VALUES (1);');
    const eager = await startNode(key, 'lp2-promote', ['  promote: true']);
    await waitFor(() => 'the promote: true node to be primary', async () => (await info(eager))?.isPrimary === true, 60_000, [first, eager]);
    await waitFor(() => 'the first node to be a replica', async () => (await info(first))?.isPrimary === false, 60_000, [first, eager]);
    await write(eager, 'lp.db', 'INSERT INTO t VALUES (2);');
    await waitSamePos([first, eager], 'lp.db');
    assert.match(eager.output(), /lease\.promote: this node is the primary/);
  });

  test('an empty candidate never wins over a candidate that has the data', async () => {
    const key = `litefs-test/${randomBytes(4).toString('hex')}`;
    const group = [await startNode(key, 'e1'), await startNode(key, 'e2')];
    const primary = await waitForPrimary(group);
    const full = group.find((n) => n !== primary)!;
    await write(primary, 'e.db', 'CREATE TABLE t(v); INSERT INTO t VALUES (1); INSERT INTO t VALUES (2);');
    await waitSamePos(group, 'e.db');

    // The primary dies; an empty node joins while its lease is still running out:
    // when the key expires, both candidates campaign, and the empty one must defer.
    await primary.kill();
    const fresh = await startNode(key, 'e3-empty');
    const next = await waitForPrimary([full, fresh]);
    assert.equal(next, full, 'a node with no data must not win while a node with the data is alive');
    await write(next, 'e.db', 'INSERT INTO t VALUES (3);');
    await waitSamePos([full, fresh], 'e.db');
    const out = expectSuccess('select', await runSqlite3(join(fresh.mnt, 'e.db'), 'SELECT group_concat(v) FROM t;'));
    assert.equal(out.trim(), '1,2,3');
  });

  test('a candidate restored from an old copy of a replica does not win over the current replica; it catches up without quarantine', async () => {
    const key = `litefs-test/${randomBytes(4).toString('hex')}`;
    const group = [await startNode(key, 'r1'), await startNode(key, 'r2')];
    const primary = await waitForPrimary(group);
    const current = group.find((n) => n !== primary)!;
    await write(primary, 'r.db', 'CREATE TABLE t(v); INSERT INTO t VALUES (1);');
    await waitSamePos(group, 'r.db');
    // An old copy of the replica's data directory, taken while it was stopped.
    await current.stop();
    const copy = mkdtempSync(join(tmpdir(), 'litefs-old-copy-'));
    try {
      cpSync(current.data, copy, { recursive: true });
      await current.start();
      await write(primary, 'r.db', 'INSERT INTO t VALUES (2); INSERT INTO t VALUES (3);');
      await waitSamePos([primary, current], 'r.db');
      // A new node starts from that copy.
      const restored = await startNode(key, 'r3-restored');
      await restored.stop();
      rmSync(restored.data, { recursive: true, force: true });
      cpSync(copy, restored.data, { recursive: true });
      await primary.kill();
      await restored.start();
      const next = await waitForPrimary([current, restored]);
      assert.equal(next, current, 'the node restored from an old copy must not win while the current replica is alive');
      await write(next, 'r.db', 'INSERT INTO t VALUES (4);');
      await waitSamePos([current, restored], 'r.db');
      const out = expectSuccess('select', await runSqlite3(join(restored.mnt, 'r.db'), 'SELECT group_concat(v) FROM t;'));
      assert.equal(out.trim(), '1,2,3,4');
      assert.equal(existsSync(join(restored.data, 'quarantine')), false, 'an old prefix catches up without quarantine');
    } finally {
      rmSync(copy, { recursive: true, force: true });
    }
  });

  test('a node of another cluster (its cluster id differs from the one in the lease store) refuses to join, with a log line', async () => {
    const key = `litefs-test/${randomBytes(4).toString('hex')}`;
    const primary = await startNode(key, 'k1');
    await waitForPrimary([primary]);
    await write(primary, 'k.db', 'CREATE TABLE t(v); INSERT INTO t VALUES (1);');
    const stranger = await startNode(key, 'k2-stranger');
    await stranger.stop();
    rmSync(stranger.data, { recursive: true, force: true });
    mkdirSync(stranger.data, { recursive: true });
    writeFileSync(join(stranger.data, 'clusterid'), 'LFSC0000000000000001\n');
    await stranger.start();
    await waitFor(() => 'the cluster id mismatch to be logged', () => /cluster id mismatch/.test(stranger.output()), 30_000, [stranger]);
    assert.equal((await info(stranger))?.isPrimary, false);
    assert.equal(await readPos(stranger, 'k.db'), '', 'nothing replicated across clusters');
    assert.equal((await info(primary))?.isPrimary, true, 'the cluster keeps its primary');
  });

  test('SIGSTOP of the primary past its lease, then SIGCONT: every acknowledged write is in the final state or in a quarantine copy', async () => {
    const key = `litefs-test/${randomBytes(4).toString('hex')}`;
    const group = [await startNode(key, 's1'), await startNode(key, 's2'), await startNode(key, 's3')];
    const old = await waitForPrimary(group);
    const db = 's.db';
    await write(old, db, 'PRAGMA journal_mode=wal; CREATE TABLE t(id INTEGER PRIMARY KEY);');
    await waitSamePos(group, db);

    const writer = runPython('ack-writer.py', [join(old.mnt, db), '12'], { timeoutMs: 120_000 });
    await new Promise((r) => setTimeout(r, 1500));
    process.kill(old.pid!, 'SIGSTOP');
    let next: LiteFSDaemon;
    try {
      next = await waitForPrimary(group.filter((n) => n !== old));
      await write(next, db, 'INSERT INTO t(id) VALUES (1000000);');
    } finally {
      process.kill(old.pid!, 'SIGCONT');
    }
    const out = await writer;
    const acked = out.stdout.split('\n').filter((l) => l.startsWith('ack ')).map((l) => Number(l.slice(4)));
    assert.ok(acked.length > 0, `the writer got some commits acknowledged before the stop:\n${out.stdout.slice(0, 2000)}\n${out.stderr}`);

    await assertAckedSurvive(group, old, next, db, acked);
  });

  for (const fault of ['hang', 'status500', 'malformed'] as const) {
    test(`the primary cut off from etcd (${fault === 'hang' ? 'partition: etcd and replicas unreachable' : `etcd answers ${fault}`}) steps down at its deadline; after healing every acknowledged write is in the final state or in quarantine`, async () => {
      const key = `litefs-test/${randomBytes(4).toString('hex')}`;
      const proxy = await FaultProxy.start(etcd.clientURL);
      const relay = await TcpRelay.start();
      try {
        // The first node reaches etcd through the fault proxy and is reached by replicas through the relay.
        const old = await startLiteFS({
          leaseLines: [
            '  type: etcd',
            '  hostname: p1',
            `  advertise-url: "${relay.url}"`,
            '  candidate: true',
            '  demote-delay: 1s',
            '  etcd:',
            `    endpoints: ["${proxy.url}"]`,
            `    key: "${key}"`,
            '    ttl: 2s',
          ],
        });
        nodes.push(old);
        relay.target = Number(new URL(old.httpURL).port);
        await waitFor(() => 'p1 to be primary', async () => (await info(old))?.isPrimary === true, 60_000, [old]);
        const group = [old, await startNode(key, 'p2'), await startNode(key, 'p3')];
        const db = 'p.db';
        await write(old, db, 'PRAGMA journal_mode=wal; CREATE TABLE t(id INTEGER PRIMARY KEY);');
        await waitSamePos(group, db);

        const writer = runPython('ack-writer.py', [join(old.mnt, db), '10'], { timeoutMs: 120_000 });
        await new Promise((r) => setTimeout(r, 1000));
        proxy.faults.set({ kind: fault });
        if (fault === 'hang') relay.cut();
        const next = await waitForPrimary(group.filter((n) => n !== old));
        await write(next, db, 'INSERT INTO t(id) VALUES (1000000);');
        await waitFor(() => 'the cut-off primary to step down', async () => (await info(old))?.isPrimary === false, 60_000, group);
        await waitFor(() => 'the step-down to be logged with its reason', () => /stepped down: (renewal failed|lease lost)/.test(old.output()), 30_000, [old]);
        proxy.faults.set(null);
        relay.heal();
        const out = await writer;
        const acked = out.stdout.split('\n').filter((l) => l.startsWith('ack ')).map((l) => Number(l.slice(4)));
        await assertAckedSurvive(group, old, next, db, acked);
      } finally {
        proxy.faults.set(null);
        await relay.close();
        await proxy.close();
      }
    });
  }
});

/** The old primary rejoins as a replica; each acknowledged id is in the final state or in one of its quarantine copies. */
async function assertAckedSurvive(group: LiteFSDaemon[], old: LiteFSDaemon, next: LiteFSDaemon, db: string, acked: number[]): Promise<void> {
  await waitFor(() => 'the old primary to be a replica of the new one', async () => (await info(old))?.isPrimary === false, 60_000, group);
  await waitSamePos(group, db);
  const final = new Set(
    expectSuccess('final rows', await runSqlite3(join(next.mnt, db), 'SELECT id FROM t;'))
      .split('\n')
      .filter((l) => l !== '')
      .map(Number),
  );
  const quarantined = quarantinedIDs(old, db);
  const lost = acked.filter((id) => !final.has(id) && !quarantined.has(id));
  assert.deepEqual(lost, [], `acknowledged commits neither in the final state nor in quarantine (final ${final.size} rows, quarantine ${quarantined.size}, acknowledged ${acked.length})`);
}

/** Row ids in every quarantine copy of `db` on `node` (database and WAL copied next to each other and read with sqlite3). */
function quarantinedIDs(node: LiteFSDaemon, db: string): Set<number> {
  const ids = new Set<number>();
  const root = join(node.data, 'quarantine', db);
  if (!existsSync(root)) return ids;
  for (const stamp of readdirSync(root)) {
    const dir = join(root, stamp);
    const work = mkdtempSync(join(tmpdir(), 'litefs-quarantine-'));
    try {
      copyFileSync(join(dir, 'database'), join(work, 'q.db'));
      if (existsSync(join(dir, 'wal'))) copyFileSync(join(dir, 'wal'), join(work, 'q.db-wal'));
      const r = spawnSqlite(join(work, 'q.db'));
      for (const line of r.split('\n')) if (line !== '') ids.add(Number(line));
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }
  return ids;
}

function spawnSqlite(path: string): string {
  const r = spawnSync('sqlite3', ['-batch', path, 'SELECT id FROM t;'], { encoding: 'utf8' });
  assert.equal(r.status, 0, `sqlite3 on a quarantine copy: ${r.stderr}`);
  return r.stdout;
}
