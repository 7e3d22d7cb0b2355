import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type LiteFSDaemon, type LiteFSDaemonOptions, startLiteFS } from './litefs-daemon.js';
import type { TcpRelay } from './tcp-relay.js';

/**
 * A static-lease cluster for the cluster suite: one primary and replicas
 * that follow its HTTP API, each a `litefs mount` child process with its own
 * data directory and mount under a temporary folder.
 */
export interface Cluster {
  readonly primary: LiteFSDaemon;
  readonly replicas: LiteFSDaemon[];
  /** Every node, primary first. */
  readonly nodes: LiteFSDaemon[];
  close(): Promise<void>;
}

/** Options for a replica of `primary` (static lease, candidate false). */
export function replicaOptions(primary: LiteFSDaemon, options: LiteFSDaemonOptions = {}): LiteFSDaemonOptions {
  return { ...options, candidate: false, primaryURL: primary.httpURL };
}

export async function startCluster(replicaCount: number, primaryOptions: LiteFSDaemonOptions = {}, replica: LiteFSDaemonOptions = {}): Promise<Cluster> {
  const primary = await startLiteFS(primaryOptions);
  const replicas: LiteFSDaemon[] = [];
  try {
    for (let i = 0; i < replicaCount; i++) replicas.push(await startLiteFS(replicaOptions(primary, replica)));
  } catch (err) {
    for (const r of replicas) await r.close();
    await primary.close();
    throw err;
  }
  return {
    primary,
    replicas,
    nodes: [primary, ...replicas],
    async close() {
      // Replicas first: a primary that goes away makes them reconnect (and log) in a loop.
      for (const r of replicas) await r.close().catch(() => undefined);
      await primary.close();
    },
  };
}

/**
 * A primary and one replica that reaches it (stream, /halt, /tx) only
 * through `relay`, a link the test can cut. `relay.target` is set to the
 * primary's API port.
 */
export async function startRelayedPair(relay: TcpRelay, primaryOptions: LiteFSDaemonOptions = {}, replica: LiteFSDaemonOptions = {}): Promise<Cluster> {
  const primary = await startLiteFS(primaryOptions);
  let follower: LiteFSDaemon;
  try {
    relay.target = Number(new URL(primary.httpURL).port);
    follower = await startLiteFS({ ...replica, candidate: false, primaryURL: relay.url });
  } catch (err) {
    await primary.close();
    throw err;
  }
  return {
    primary,
    replicas: [follower],
    nodes: [primary, follower],
    async close() {
      await follower.close().catch(() => undefined);
      await primary.close();
    },
  };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it returns true; fails with `what()` (and the nodes' output) after `timeoutMs`. */
export async function waitFor(what: () => string, check: () => Promise<boolean> | boolean, timeoutMs = 30_000, nodes: LiteFSDaemon[] = []): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) {
      const logs = nodes.map((n, i) => `--- node ${i} (${n.httpURL}) ---\n${n.output().slice(-3000)}`).join('\n');
      assert.fail(`timed out after ${timeoutMs} ms waiting for ${what()}\n${logs}`);
    }
    await sleep(50);
  }
}

/** `<db>-pos` as the mount shows it (`txid/checksum`), '' if the database is unknown there. */
export async function readPos(node: LiteFSDaemon, db: string): Promise<string> {
  try {
    return (await readFile(join(node.mnt, `${db}-pos`), 'utf8')).trim();
  } catch {
    return '';
  }
}

/** Waits until every replica shows the primary's position of `db`; returns it. */
export async function waitConverged(cluster: Cluster, db: string, timeoutMs = 60_000): Promise<string> {
  let want = '';
  const seen: string[] = [];
  await waitFor(
    () => `${db} to reach ${want} on every replica (seen ${seen.join(', ')})`,
    async () => {
      want = await readPos(cluster.primary, db);
      if (want === '') return false;
      for (const [i, r] of cluster.replicas.entries()) seen[i] = await readPos(r, db);
      return seen.every((p) => p === want);
    },
    timeoutMs,
    cluster.nodes,
  );
  return want;
}

/** GET /export?name=db: the database image a node serves. */
export async function exportImage(node: LiteFSDaemon, db: string): Promise<Buffer> {
  const res = await fetch(`${node.httpURL}/export?name=${encodeURIComponent(db)}`);
  const body = Buffer.from(await res.arrayBuffer());
  assert.equal(res.status, 200, `export of ${db} from ${node.httpURL}: ${res.status} ${body.toString('utf8', 0, 200)}`);
  return body;
}

/** Asserts that every node exports byte-identical images of `db`. */
export async function assertSameImages(cluster: Cluster, db: string): Promise<void> {
  const want = await exportImage(cluster.primary, db);
  for (const [i, r] of cluster.replicas.entries()) {
    const got = await exportImage(r, db);
    assert.ok(got.equals(want), `${db}: replica ${i} exports ${got.length} bytes that differ from the primary's ${want.length}`);
  }
}

/** What the node's GET /info says of its role: undefined when it is not running or does not answer within 2 s. */
export async function isPrimary(node: LiteFSDaemon): Promise<boolean | undefined> {
  if (!node.running) return undefined;
  try {
    const info = (await (await fetch(`${node.httpURL}/info`, { signal: AbortSignal.timeout(2000) })).json()) as { isPrimary: boolean };
    return info.isPrimary;
  } catch {
    return undefined;
  }
}
