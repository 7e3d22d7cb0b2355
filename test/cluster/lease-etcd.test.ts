import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ETCD_MIN_TTL_MS, EtcdLeaser } from '../../src/lease/etcd.js';
import { LeaseStoreError, NoPrimaryError } from '../../src/lease/lease.js';
import { type Etcd, startEtcd } from '../helpers/etcd.js';
import { FaultProxy } from '../helpers/http-faults.js';
import { skipUnless } from '../helpers/prereq.js';
import { LONG_TTL_MS, advertiseURL, leaseConformance } from '../unit/lease/conformance.js';

/**
 * The etcd leaser against a real etcd (Debian etcd-server 3.4) started for
 * this file on its own loopback ports and data dir. Faults (5xx, malformed
 * JSON, a hanging store) come from a proxy in front of it.
 */
const skip = skipUnless(['etcd']);

describe('etcd lease (real etcd)', { skip }, () => {
  let etcd: Etcd | undefined;
  let proxy: FaultProxy | undefined;
  before(async () => {
    etcd = await startEtcd();
    proxy = await FaultProxy.start(etcd.clientURL);
  });
  after(async () => {
    await proxy?.close();
    await etcd?.stop();
  });

  leaseConformance({ elects: true }, () => ({
    faults: proxy!.faults,
    leaser: (o) =>
      new EtcdLeaser({
        endpoints: [o.deadStore ? 'http://127.0.0.1:9' : o.faulty ? proxy!.url : etcd!.clientURL],
        key: o.key,
        hostname: o.name,
        advertiseURL: advertiseURL(o.name),
        ttlMs: o.ttlMs ?? LONG_TTL_MS,
        ...(o.requestTimeoutMs !== undefined ? { requestTimeoutMs: o.requestTimeoutMs } : {}),
      }),
  }));

  test('the lease key holds LiteFS PrimaryInfo JSON and is attached to the etcd lease; epoch = its create revision', async () => {
    const leaser = new EtcdLeaser({ endpoints: [etcd!.clientURL], key: 'layout/key', hostname: 'n1', advertiseURL: 'http://n1:20202' });
    const lease = await leaser.acquire();
    try {
      const res = await fetch(`${etcd!.clientURL}/v3/kv/range`, {
        method: 'POST',
        body: JSON.stringify({ key: Buffer.from('layout/key').toString('base64') }),
      });
      const body = (await res.json()) as { kvs: { value: string; lease: string; create_revision: string }[] };
      const kv = body.kvs[0]!;
      assert.deepEqual(JSON.parse(Buffer.from(kv.value, 'base64').toString('utf8')), {
        hostname: 'n1',
        'advertise-url': 'http://n1:20202',
      });
      assert.equal(kv.lease, lease.id);
      assert.equal(BigInt(kv.create_revision), lease.epoch);
    } finally {
      await lease.close();
    }
  });

  test('a second endpoint is used when the first is unreachable', async () => {
    const leaser = new EtcdLeaser({
      endpoints: ['http://127.0.0.1:9', etcd!.clientURL],
      key: 'failover/key',
      hostname: 'n1',
      advertiseURL: 'http://n1:20202',
    });
    const lease = await leaser.acquire();
    await lease.renew();
    await lease.close();
  });

  test('a TTL under 2 s is refused at construction', () => {
    assert.throws(
      () => new EtcdLeaser({ endpoints: [etcd!.clientURL], key: 'k', hostname: 'h', advertiseURL: 'http://h:1', ttlMs: ETCD_MIN_TTL_MS - 1 }),
      /at least 2s/,
    );
  });
});

describe('etcd lease with authentication (real etcd)', { skip }, () => {
  let etcd: Etcd | undefined;
  before(async () => {
    etcd = await startEtcd();
    const post = async (path: string, body: object, headers: Record<string, string> = {}): Promise<void> => {
      const res = await fetch(`${etcd!.clientURL}${path}`, { method: 'POST', headers, body: JSON.stringify(body) });
      assert.equal(res.status, 200, `${path}: ${await res.text()}`);
    };
    await post('/v3/auth/user/add', { name: 'root', password: 'rootpw' });
    await post('/v3/auth/user/grant', { user: 'root', role: 'root' });
    await post('/v3/auth/enable', {});
  });
  after(async () => {
    await etcd?.stop();
  });

  test('lease.etcd.username/password: the leaser authenticates and elects; without them the store rejects it', async () => {
    const opts = { endpoints: [etcd!.clientURL], key: 'auth/key', hostname: 'n1', advertiseURL: 'http://n1:20202' };
    await assert.rejects(new EtcdLeaser(opts).primaryInfo(), (e: unknown) => e instanceof LeaseStoreError && e.failure === 'rejected');
    const leaser = new EtcdLeaser({ ...opts, username: 'root', password: 'rootpw' });
    const lease = await leaser.acquire();
    await lease.renew();
    assert.equal((await leaser.primaryInfo()).hostname, 'n1');
    await lease.close();
    await assert.rejects(leaser.primaryInfo(), NoPrimaryError);
  });
});
