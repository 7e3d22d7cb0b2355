import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  type Lease,
  type Leaser,
  type PositionRecord,
  ClusterIDConflictError,
  LeaseExpiredError,
  LeaseStoreError,
  NoPrimaryError,
  PrimaryExistsError,
} from '../../../src/lease/lease.js';
import type { FaultKind, FaultKnob } from '../../helpers/http-faults.js';

/**
 * The behaviour every lease backend must have (static where it applies, etcd,
 * Consul). Each test uses its own lease key, so tests never see each other's
 * leases. No timing assertions: waits poll for a condition with a generous
 * deadline.
 */
export interface NodeOptions {
  readonly key: string;
  /** Node name; 'a' is the static candidate. */
  readonly name: string;
  readonly requestTimeoutMs?: number;
  /** Route this node's requests through the fault knob. */
  readonly faulty?: boolean;
  /** Point this node at a loopback port where nothing listens. */
  readonly deadStore?: boolean;
  /**
   * Lease TTL; backends default to a long one (30 s) so a loaded machine
   * cannot expire a lease mid-test. Expiry tests pass SHORT_TTL_MS.
   */
  readonly ttlMs?: number;
}

export interface LeaseBackend {
  /** Creates a leaser for one node. */
  leaser(opts: NodeOptions): Leaser;
  /** Fault injection in front of the store (null: not applicable, e.g. static). */
  readonly faults: FaultKnob | null;
}

const WAIT_MS = 60_000;
/** etcd's minimum TTL; the Consul stand-in is started to accept it. */
export const SHORT_TTL_MS = 2000;
export const LONG_TTL_MS = 30_000;

export function advertiseURL(name: string): string {
  return `http://${name}.test:20202`;
}

function record(nodeID: string, hostname: string, epoch: bigint, txid: string): PositionRecord {
  return { nodeID, hostname, epoch, databases: { 'db.sqlite': { txid, postApplyChecksum: '8000000000000001' }, 'other.db': { txid: '0000000000000001', postApplyChecksum: 'ABCDEF0123456789' } } };
}

function newKey(): string {
  return `litefs-test/${randomBytes(6).toString('hex')}`;
}

/** Retries acquire until it wins (another lease must expire or be released first). */
async function acquireEventually(l: Leaser): Promise<Lease> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    try {
      return await l.acquire();
    } catch (e) {
      if (!(e instanceof PrimaryExistsError) || Date.now() > deadline) throw e;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** `elects` must be known when the tests are defined (before any before() hook has made the backend). */
export function leaseConformance(caps: { readonly elects: boolean }, get: () => LeaseBackend): void {
  const opened: Leaser[] = [];
  const leases: Lease[] = [];
  const node = (opts: NodeOptions): Leaser => {
    const l = get().leaser(opts);
    opened.push(l);
    return l;
  };
  const track = (l: Lease): Lease => {
    leases.push(l);
    return l;
  };
  const cleanup = async (): Promise<void> => {
    get().faults?.set(null);
    for (const l of leases.splice(0)) await l.close().catch(() => undefined);
    for (const l of opened.splice(0)) await l.close().catch(() => undefined);
  };

  test('the first node acquires; a second acquire gets PrimaryExistsError naming the primary; primaryInfo names it', async (t) => {
    t.after(cleanup);
    const key = newKey();
    const a = node({ key, name: 'a' });
    const b = node({ key, name: 'b' });
    const lease = track(await a.acquire());
    assert.ok(lease.epoch > 0n, `epoch ${lease.epoch} must be positive`);
    assert.ok(lease.deadline > lease.renewedAt, 'the deadline lies after the renewal time');
    assert.ok(lease.deadline <= lease.renewedAt + lease.ttlMs, 'the deadline is never later than renewedAt + TTL');
    await assert.rejects(b.acquire(), (e: unknown) => {
      assert.ok(e instanceof PrimaryExistsError, `expected PrimaryExistsError, got ${String(e)}`);
      assert.equal(e.primary?.hostname, 'a');
      return true;
    });
    assert.deepEqual(await b.primaryInfo(), { hostname: 'a', advertiseURL: advertiseURL('a') });
  });

  test('renew keeps the lease; renewedAt is the send time of the last renewal; the deadline follows it', async (t) => {
    t.after(cleanup);
    const a = node({ key: newKey(), name: 'a' });
    const lease = track(await a.acquire());
    const span = lease.deadline - lease.renewedAt;
    for (let i = 0; i < 2; i++) {
      const before = performance.now();
      await lease.renew();
      const after = performance.now();
      if (caps.elects) {
        // The deadline counts from when the renewal was sent, not when its answer came.
        assert.ok(lease.renewedAt >= before && lease.renewedAt <= after, 'renewedAt is the send time of this renewal');
      }
      assert.equal(lease.deadline - lease.renewedAt, span, 'deadline = renewedAt + TTL - margin');
    }
  });

  if (!caps.elects) {
    test('static: epoch 1, no cluster id in the store, no handoff', async (t) => {
      t.after(cleanup);
      const key = newKey();
      const a = node({ key, name: 'a' });
      const lease = track(await a.acquire());
      assert.equal(lease.epoch, 1n);
      await assert.rejects(a.primaryInfo(), NoPrimaryError);
      assert.equal(await a.clusterID(), '');
      await a.setClusterID('LFSC0123456789ABCDEF');
      assert.equal(await a.clusterID(), '');
      await assert.rejects(lease.handoff('00000000000000AB'), /does not support handoff/);
      await a.publishPrimaryPositions(lease, record('00000000000000A1', 'a', 1n, '0000000000000001'));
      assert.deepEqual(await a.positions(), { primary: null, candidates: [] });
    });
    return;
  }

  test('with no primary, primaryInfo throws NoPrimaryError', async (t) => {
    t.after(cleanup);
    await assert.rejects(node({ key: newKey(), name: 'b' }).primaryInfo(), NoPrimaryError);
  });

  test('close releases the lease: another node then acquires with a higher epoch', async (t) => {
    t.after(cleanup);
    const key = newKey();
    const a = node({ key, name: 'a' });
    const b = node({ key, name: 'b' });
    const first = await a.acquire();
    await first.close();
    await first.close(); // idempotent
    await assert.rejects(b.primaryInfo(), NoPrimaryError);
    const second = track(await acquireEventually(b));
    assert.ok(second.epoch > first.epoch, `epoch ${second.epoch} must exceed ${first.epoch}`);
    assert.equal((await a.primaryInfo()).hostname, 'b');
  });

  test('a lease that is not renewed expires: another node acquires, the old holder gets LeaseExpiredError', async (t) => {
    t.after(cleanup);
    const key = newKey();
    const a = node({ key, name: 'a', ttlMs: SHORT_TTL_MS });
    const b = node({ key, name: 'b' });
    const stale = await a.acquire();
    const next = track(await acquireEventually(b));
    assert.ok(next.epoch > stale.epoch);
    await assert.rejects(stale.renew(), LeaseExpiredError);
    assert.equal((await a.primaryInfo()).hostname, 'b');
  });

  test('epochs strictly increase across acquisitions', async (t) => {
    t.after(cleanup);
    const key = newKey();
    const nodes = ['a', 'b', 'c'].map((name) => node({ key, name }));
    let last = 0n;
    for (let round = 0; round < 2; round++) {
      for (const n of nodes) {
        const lease = await acquireEventually(n);
        assert.ok(lease.epoch > last, `round ${round} node ${n.hostname}: epoch ${lease.epoch} after ${last}`);
        last = lease.epoch;
        await lease.close();
      }
    }
  });

  test('handoff: the id reaches nextHandoff; the target takes over with acquireExisting and a new epoch', async (t) => {
    t.after(cleanup);
    const key = newKey();
    const a = node({ key, name: 'a' });
    const b = node({ key, name: 'b' });
    const lease = await a.acquire();
    await lease.handoff('00000000000000AB');
    assert.equal(await lease.nextHandoff(), '00000000000000AB');
    const taken = track(await b.acquireExisting(lease.id));
    assert.equal(taken.id, lease.id);
    assert.ok(taken.epoch > lease.epoch, `handoff epoch ${taken.epoch} must exceed ${lease.epoch}`);
    assert.equal((await a.primaryInfo()).hostname, 'b');
    await taken.renew();
    await assert.rejects(lease.renew(), LeaseExpiredError, 'the handed-off term is over for the old holder');
  });

  test('acquireExisting with a lease that is gone throws LeaseExpiredError', async (t) => {
    t.after(cleanup);
    const key = newKey();
    const a = node({ key, name: 'a' });
    const lease = await a.acquire();
    await lease.close();
    await assert.rejects(node({ key, name: 'b' }).acquireExisting(lease.id), LeaseExpiredError);
  });

  test('cluster id: empty, then set once; the same id again is fine, another id is a ClusterIDConflictError', async (t) => {
    t.after(cleanup);
    const key = newKey();
    const a = node({ key, name: 'a' });
    const b = node({ key, name: 'b' });
    assert.equal(await a.clusterID(), '');
    await a.setClusterID('LFSC0123456789ABCDEF');
    assert.equal(await b.clusterID(), 'LFSC0123456789ABCDEF');
    await b.setClusterID('LFSC0123456789ABCDEF');
    await assert.rejects(b.setClusterID('LFSCFFFFFFFFFFFFFFFF'), ClusterIDConflictError);
    // The cluster id key does not make a primary.
    await assert.rejects(a.primaryInfo(), NoPrimaryError);
  });

  test('positions: the primary publishes beside the lease key while it holds it; candidates publish presence records', async (t) => {
    t.after(cleanup);
    const key = newKey();
    const a = node({ key, name: 'a' });
    const b = node({ key, name: 'b' });
    assert.deepEqual(await b.positions(), { primary: null, candidates: [] });
    const lease = await a.acquire();
    const recA = record('00000000000000A1', 'a', lease.epoch, '0000000000000007');
    await a.publishPrimaryPositions(lease, recA);
    const recB = record('00000000000000B2', 'b', 0n, '0000000000000005');
    const presence = await b.openPresence(recB.nodeID, recB);
    assert.deepEqual(await b.positions(), { primary: recA, candidates: [recB] });
    const recB2 = record('00000000000000B2', 'b', 0n, '0000000000000007');
    await presence.publish(recB2);
    await presence.renew();
    assert.deepEqual((await a.positions()).candidates, [recB2]);
    await presence.close();
    assert.deepEqual((await a.positions()).candidates, []);
    // A deposed primary cannot overwrite the record; the last primary's record stays.
    await lease.close();
    const next = track(await acquireEventually(b));
    await assert.rejects(a.publishPrimaryPositions(lease, record('00000000000000A1', 'a', lease.epoch, '0000000000000009')), LeaseExpiredError);
    assert.deepEqual((await b.positions()).primary, recA);
    await b.publishPrimaryPositions(next, recB2);
    assert.deepEqual((await a.positions()).primary, recB2);
  });

  test('a presence record that is not renewed vanishes', async (t) => {
    t.after(cleanup);
    const key = newKey();
    const c = node({ key, name: 'c', ttlMs: SHORT_TTL_MS });
    const rec = record('00000000000000C3', 'c', 0n, '0000000000000001');
    await c.openPresence(rec.nodeID, rec);
    assert.deepEqual((await c.positions()).candidates, [rec]);
    const deadline = Date.now() + WAIT_MS;
    while ((await c.positions()).candidates.length > 0) {
      assert.ok(Date.now() < deadline, 'presence record still there long after its TTL');
      await new Promise((r) => setTimeout(r, 200));
    }
  });

  const cases: [FaultKind, string][] = [
    ['status500', 'http'],
    ['malformed', 'malformed'],
    ['wrongShape', 'malformed'],
    ['hang', 'timeout'],
  ];
  for (const [kind, failure] of cases) {
    test(`store fault ${kind}: every call throws LeaseStoreError(${failure}); renew is not mistaken for expiry`, async (t) => {
      t.after(cleanup);
      const faults = get().faults!;
      const key = newKey();
      const a = node({ key, name: 'a', faulty: true, requestTimeoutMs: 3000 });
      const b = node({ key, name: 'b', faulty: true, requestTimeoutMs: 3000 });
      const lease = track(await a.acquire());
      faults.set({ kind });
      const check = (e: unknown): boolean => {
        assert.ok(e instanceof LeaseStoreError, `expected LeaseStoreError, got ${String(e)}`);
        assert.equal(e.failure, failure, e.message);
        return true;
      };
      const renewedAt = lease.renewedAt;
      await assert.rejects(lease.renew(), check);
      assert.equal(lease.renewedAt, renewedAt, 'a failed renewal does not move the deadline');
      await assert.rejects(b.acquire(), check);
      await assert.rejects(b.primaryInfo(), check);
      await assert.rejects(b.clusterID(), check);
      await assert.rejects(b.setClusterID('LFSC0123456789ABCDEF'), check);
      faults.set(null);
      await lease.renew();
      assert.equal((await b.primaryInfo()).hostname, 'a');
    });
  }

  test('an unreachable store is a LeaseStoreError(unavailable)', async (t) => {
    t.after(cleanup);
    const l = node({ key: newKey(), name: 'a', faulty: true, requestTimeoutMs: 3000 });
    get().faults!.set(null);
    const dead = get().leaser({ key: newKey(), name: 'dead', requestTimeoutMs: 2000, deadStore: true });
    opened.push(dead);
    await assert.rejects(dead.primaryInfo(), (e: unknown) => e instanceof LeaseStoreError && e.failure === 'unavailable');
    await assert.rejects(l.primaryInfo(), NoPrimaryError);
  });
}
