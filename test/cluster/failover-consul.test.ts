import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { isPrimary, readPos, waitFor } from '../helpers/cluster.js';
import { ConsulStandin } from '../helpers/consul-standin.js';
import { type LiteFSDaemon, startLiteFS } from '../helpers/litefs-daemon.js';
import { skipUnless } from '../helpers/prereq.js';
import { expectSuccess, runSqlite3 } from '../helpers/sqlite-client.js';

/**
 * `lease.type: consul` through `litefs mount`, against the in-test Consul
 * stand-in (test/helpers/consul-standin.ts: Consul is not packaged in
 * Debian, so this is a documented stand-in implementing the session and KV
 * endpoints LiteFS uses). Its TTL floor is lowered to 2 s so that expiry
 * comes within the test's patience; real Consul's floor is 10 s.
 */
const skip = skipUnless(['root', 'fuse', 'sqlite3']);


describe('leases on Consul (stand-in): election, handoff, failover', { skip }, () => {
  let consul: ConsulStandin;
  const nodes: LiteFSDaemon[] = [];
  before(async () => {
    consul = await ConsulStandin.start({ minTTLMs: 2000 });
  });
  after(async () => {
    for (const n of nodes) await n.close().catch(() => undefined);
    await consul?.close();
  });

  async function startNode(key: string, name: string): Promise<LiteFSDaemon> {
    const node = await startLiteFS({
      leaseLines: [
        '  type: consul',
        `  hostname: ${name}`,
        '  advertise-url: "$SELF_URL"',
        '  candidate: true',
        '  demote-delay: 1s',
        '  consul:',
        `    url: "${consul.url}"`,
        `    key: "${key}"`,
        '    ttl: 2s',
        '    lock-delay: 100ms',
      ],
    });
    nodes.push(node);
    return node;
  }

  async function waitForPrimary(group: LiteFSDaemon[]): Promise<LiteFSDaemon> {
    let found: LiteFSDaemon | undefined;
    await waitFor(
      () => 'one primary',
      async () => {
        const states = await Promise.all(group.map(isPrimary));
        const idx = states.flatMap((s, i) => (s === true ? [i] : []));
        found = idx.length === 1 ? group[idx[0]!] : undefined;
        return found !== undefined;
      },
      60_000,
      group,
    );
    return found!;
  }

  async function write(node: LiteFSDaemon, sql: string): Promise<void> {
    await waitFor(
      () => `a write on ${node.httpURL}`,
      async () => (await runSqlite3(join(node.mnt, 'c.db'), sql, { timeoutMs: 30_000 })).status === 0,
      60_000,
      [node],
    );
  }

  async function converged(group: LiteFSDaemon[]): Promise<void> {
    await waitFor(
      () => 'c.db at one position everywhere',
      async () => {
        const p = await Promise.all(group.map((n) => readPos(n, 'c.db')));
        return p[0] !== '' && p.every((x) => x === p[0]);
      },
      60_000,
      group,
    );
  }

  test('two candidates elect one primary; /promote hands over; kill -9 fails over; the old one rejoins', async () => {
    const key = `litefs-${randomBytes(4).toString('hex')}`;
    const group = [await startNode(key, 'c1'), await startNode(key, 'c2')];
    const first = await waitForPrimary(group);
    const second = group.find((n) => n !== first)!;
    await write(first, 'CREATE TABLE t(v); INSERT INTO t VALUES (1);');
    await converged(group);

    const res = await fetch(`${second.httpURL}/promote`, { method: 'POST' });
    assert.equal(res.status, 200, await res.text());
    await waitFor(() => 'the promoted node to be primary', async () => (await isPrimary(second)) === true, 60_000, group);
    await write(second, 'INSERT INTO t VALUES (2);');
    await converged(group);

    await second.kill();
    await waitFor(() => 'the first node to be primary again', async () => (await isPrimary(first)) === true, 60_000, group);
    await write(first, 'INSERT INTO t VALUES (3);');
    await second.start();
    await converged(group);
    const out = expectSuccess('select', await runSqlite3(join(second.mnt, 'c.db'), 'SELECT group_concat(v) FROM t; PRAGMA integrity_check;'));
    assert.equal(out.trim(), '1,2,3\nok');
  });
});
