import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ConsulLeaser } from '../../../src/lease/consul.js';
import { LeaseExpiredError, LeaseStoreError } from '../../../src/lease/lease.js';
import { ConsulStandin } from '../../helpers/consul-standin.js';
import { LONG_TTL_MS, advertiseURL, leaseConformance } from './conformance.js';

/**
 * The Consul leaser against the in-test Consul stand-in (Consul is not
 * packaged in Debian; see test/helpers/consul-standin.ts). The stand-in
 * accepts TTLs down to 1 s here so expiry tests do not wait 10-20 s.
 */
describe('consul lease (stand-in)', () => {
  let consul: ConsulStandin;
  before(async () => {
    consul = await ConsulStandin.start({ minTTLMs: 1000 });
  });
  after(async () => {
    await consul?.close();
  });

  leaseConformance({ elects: true }, () => ({
    faults: consul.faults,
    leaser: (o) =>
      new ConsulLeaser({
        url: o.deadStore ? 'http://127.0.0.1:9' : consul.url,
        key: o.key,
        hostname: o.name,
        advertiseURL: advertiseURL(o.name),
        ttlMs: o.ttlMs ?? LONG_TTL_MS,
        lockDelayMs: 200,
        ...(o.requestTimeoutMs !== undefined ? { requestTimeoutMs: o.requestTimeoutMs } : {}),
      }),
  }));

  test("LiteFS's layout: prefix and token from the URL, catalog node, session body, lease and cluster-id keys", async () => {
    const url = new URL(consul.url);
    const leaser = new ConsulLeaser({
      url: `http://:s3cret@${url.host}/fly-app-prefix`,
      key: 'litefs-layout',
      hostname: 'node-a',
      advertiseURL: 'http://node-a:20202',
      ttlMs: 10_000,
      lockDelayMs: 1000,
    });
    const before = consul.sessionBodies.length;
    const lease = await leaser.acquire();
    try {
      assert.deepEqual(consul.registeredNodes.at(-1), { Node: 'fly-app-prefix/litefs', Address: 'localhost' });
      assert.deepEqual(consul.sessionBodies[before], {
        Checks: [],
        Name: 'litefs',
        Node: 'fly-app-prefix/litefs',
        LockDelay: '1000ms',
        Behavior: 'delete',
        TTL: '10s',
      });
      assert.ok(consul.tokens.has('s3cret'), 'the URL password is sent as X-Consul-Token');
      const entry = consul.entry('fly-app-prefix/litefs-layout');
      assert.ok(entry, 'lease key is <prefix>/<key>');
      assert.deepEqual(JSON.parse(entry.value), { hostname: 'node-a', 'advertise-url': 'http://node-a:20202' });
      assert.equal(entry.session, lease.id);
      assert.equal(BigInt(entry.modifyIndex), lease.epoch, 'epoch = ModifyIndex of the acquiring write');
      await leaser.setClusterID('LFSC0123456789ABCDEF');
      assert.equal(consul.entry('fly-app-prefix/litefs-layout/clusterid')?.value, 'LFSC0123456789ABCDEF');
    } finally {
      await lease.close();
    }
    // Consul keeps a released key, without a session (only an invalidated session deletes it).
    assert.equal(consul.entry('fly-app-prefix/litefs-layout')?.session ?? '', '', 'close releases the key');
  });

  test('a session Consul dropped: renew throws LeaseExpiredError and the key is gone (Behavior delete)', async () => {
    const leaser = new ConsulLeaser({ url: consul.url, key: 'dropped', hostname: 'a', advertiseURL: 'http://a:1', ttlMs: 2000 });
    const lease = await leaser.acquire();
    consul.expireSession(lease.id);
    await assert.rejects(lease.renew(), LeaseExpiredError);
    assert.equal(consul.entry('dropped'), null);
    await lease.close().catch(() => undefined);
  });
});

describe('consul lease: store-side validation', () => {
  test("a TTL below Consul's 10 s minimum is rejected by the store as a LeaseStoreError, not a crash", async () => {
    const consul = await ConsulStandin.start();
    try {
      const leaser = new ConsulLeaser({ url: consul.url, key: 'k', hostname: 'a', advertiseURL: 'http://a:1', ttlMs: 2000 });
      await assert.rejects(leaser.acquire(), (e: unknown) => {
        assert.ok(e instanceof LeaseStoreError, String(e));
        assert.equal(e.failure, 'rejected');
        assert.match(e.message, /Invalid Session TTL/);
        return true;
      });
    } finally {
      await consul.close();
    }
  });
});
