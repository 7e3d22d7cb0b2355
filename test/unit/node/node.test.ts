import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { ClusterIDError, loadOrCreateClusterID } from '../../../src/node/cluster-id.js';
import { EventHub, SUBSCRIBER_BUFFER } from '../../../src/node/event-hub.js';
import { parseListenAddr } from '../../../src/node/http-addr.js';
import { validateImport } from '../../../src/node/data-dir-transfer.js';
import { ClusterNode } from '../../../src/node/cluster-node.js';
import { encodeEvent } from '../../../src/http/events.js';

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'node-unit-'));
}

describe('cluster id', () => {
  test('generated once as LFSC + 16 hex, then loaded; bad content is an error', () => {
    const dir = tempDir();
    try {
      const id = loadOrCreateClusterID(dir);
      assert.match(id, /^LFSC[0-9A-F]{16}$/);
      assert.equal(readFileSync(join(dir, 'clusterid'), 'utf8'), id + '\n');
      assert.equal(loadOrCreateClusterID(dir), id);
      writeFileSync(join(dir, 'clusterid'), 'nonsense\n');
      assert.throws(() => loadOrCreateClusterID(dir), ClusterIDError);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('event hub', () => {
  test('init first, then published events; a subscriber 1024 behind is dropped', async () => {
    const hub = new EventHub(() => ({ type: 'init', data: { isPrimary: true } }));
    const sub = hub.subscribe();
    const signal = new AbortController().signal;
    hub.publish({ type: 'primaryChange', data: { isPrimary: true, hostname: 'h' } });
    assert.equal((await sub.next(signal))?.type, 'init');
    assert.equal((await sub.next(signal))?.type, 'primaryChange');
    for (let i = 0; i <= SUBSCRIBER_BUFFER; i++) hub.publish({ type: 'primaryChange', data: { isPrimary: true } });
    assert.equal(hub.size, 0);
  });

  test('next resolves undefined when its signal aborts', async () => {
    const hub = new EventHub(() => ({ type: 'init', data: { isPrimary: true } }));
    const sub = hub.subscribe();
    const ac = new AbortController();
    await sub.next(ac.signal);
    const waiting = sub.next(ac.signal);
    ac.abort();
    assert.equal(await waiting, undefined);
  });
});

describe('cluster node', () => {
  test('tx store events move the position, the metrics and /events', async () => {
    const dir = tempDir();
    try {
      const registry = new Registry();
      const node = new ClusterNode({ dataDir: dir, clusterID: '', hostname: 'h1', candidate: true, registry, defaultMetrics: false });
      node.becomePrimary(1n, null);
      const sub = node.subscribeEvents();
      const signal = new AbortController().signal;
      assert.deepEqual(await sub.next(signal), { type: 'init', data: { isPrimary: true, hostname: 'h1' } });
      node.onStoreEvent({
        type: 'tx',
        db: 'a.db',
        txid: '0000000000000003',
        checksum: '8000000000000abc',
        pages: 1,
        pageSize: 4096,
        commit: 7,
        timestamp: 1_700_000_000_000,
      });
      const ev = await sub.next(signal);
      assert.equal(ev?.type, 'tx');
      assert.equal(ev?.db, 'a.db');
      // The header fields come with the store event: the LTX file is never opened (there is none here).
      assert.deepEqual(ev?.type === 'tx' ? ev.data : undefined, {
        txID: 3n,
        postApplyChecksum: 0x8000000000000abcn,
        pageSize: 4096,
        commit: 7,
        timestamp: 1_700_000_000_000,
      });
      assert.deepEqual(node.position('a.db'), { txid: 3n, postApplyChecksum: 0x8000000000000abcn });
      const text = await registry.metrics();
      assert.match(text, /^litefs_db_txid\{db="a\.db"\} 3$/m);
      assert.match(text, /^litefs_is_primary 1$/m);
      assert.deepEqual(node.info(), { clusterID: '', isPrimary: true, candidate: true, path: dir, primaryHostname: 'h1' });
      sub.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('serves replication as primary: tx store events reach the replication positions and every /stream subscriber', async () => {
    const dir = tempDir();
    try {
      const node = new ClusterNode({ dataDir: dir, clusterID: '', hostname: 'h1', candidate: true, registry: new Registry(), defaultMetrics: false });
      node.becomePrimary(1n, null);
      const src = node.replication;
      const primary = src.primarySignal();
      assert.ok(primary && !primary.aborted);
      const stream = src.subscribeChanges(7n);
      node.onStoreEvent({ type: 'tx', db: 'a.db', txid: '0000000000000002', checksum: '8000000000000abc', pages: 1, pageSize: 4096, commit: 2, timestamp: 0 });
      assert.deepEqual(src.position('a.db'), { txid: 2n, postApplyChecksum: 0x8000000000000abcn });
      assert.deepEqual(src.databaseNames(), ['a.db']);
      assert.deepEqual([...(await stream.next(new AbortController().signal))!.dirty], ['a.db']);
      stream.close();
      node.close();
      assert.ok(primary.aborted, 'shutdown ends the streams');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('cluster node roles', () => {
  test('a replica shows its primary, refuses /import with 503 and /stream (no primary signal); a term makes it primary with its epoch', async () => {
    const dir = tempDir();
    try {
      const node = new ClusterNode({ dataDir: dir, clusterID: '', hostname: 'me', candidate: false, registry: new Registry(), defaultMetrics: false });
      node.becomeReplica(null);
      assert.equal(node.info().isPrimary, false);
      assert.equal(node.info().primaryHostname, '');
      node.setPrimary({ hostname: 'p1', advertiseURL: 'http://p1:20202' });
      assert.equal(node.info().primaryHostname, 'p1');
      assert.equal(node.replication.primarySignal(), undefined);
      await assert.rejects(node.importDatabase('a.db', (async function* () {})(), new AbortController().signal), { status: 503 });
      await assert.rejects(node.promote(new AbortController().signal), { status: 409 });
      assert.equal(node.epoch(), undefined);
      const sub = node.subscribeEvents();
      const idle = new AbortController().signal;
      assert.equal((await sub.next(idle))?.type, 'init');
      node.becomePrimary(7n, null, 'acquired the lease (epoch 7)');
      const change = await sub.next(idle);
      assert.deepEqual(change, { type: 'primaryChange', data: { isPrimary: true, hostname: 'me', reason: 'acquired the lease (epoch 7)' } });
      assert.equal(encodeEvent(change!), '{"type":"primaryChange","data":{"isPrimary":true,"hostname":"me","reason":"acquired the lease (epoch 7)"}}\n');
      sub.close();
      assert.equal(node.epoch(), 7n);
      assert.equal(readFileSync(join(dir, 'epoch'), 'utf8'), '7\n', 'the epoch is persisted');
      assert.ok(node.replication.primarySignal() !== undefined);
      node.becomeReplica(null);
      assert.equal(node.epoch(), 7n, 'a replica reports the highest epoch seen');
      node.onNewerEpoch(9n);
      assert.equal(node.epoch(), 9n);
      node.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('http.addr', () => {
  test('host:port, :port and [v6]:port', () => {
    assert.deepEqual(parseListenAddr(':20202'), { host: undefined, port: 20202 });
    assert.deepEqual(parseListenAddr('127.0.0.1:8080'), { host: '127.0.0.1', port: 8080 });
    assert.deepEqual(parseListenAddr('[::1]:1'), { host: '::1', port: 1 });
    assert.throws(() => parseListenAddr('20202'));
    assert.throws(() => parseListenAddr(':70000'));
  });
});

describe('import validation', () => {
  const header = (pageSize: number, count: number, size: number): Buffer => {
    const b = Buffer.alloc(size);
    b.write('SQLite format 3\0', 0, 'latin1');
    b.writeUInt16BE(pageSize === 65536 ? 1 : pageSize, 16);
    b.writeUInt32BE(count, 28);
    return b;
  };
  const validate = (body: Buffer) => validateImport(body.subarray(0, 100), body.length);
  test('accepts a whole number of pages and a header count it holds', () => {
    assert.deepEqual(validate(header(4096, 2, 8192)), { pageSize: 4096, pageCount: 2 });
    assert.deepEqual(validate(header(65536, 1, 65536)), { pageSize: 65536, pageCount: 1 });
  });
  test('refuses bad magic, page size, ragged size and a short body with 400', () => {
    assert.throws(() => validate(Buffer.alloc(4096, 1)), { status: 400 });
    assert.throws(() => validate(header(1000, 1, 1000)), { status: 400 });
    assert.throws(() => validate(header(4096, 1, 5000)), { status: 400 });
    assert.throws(() => validate(header(4096, 3, 8192)), { status: 400 });
    assert.throws(() => validate(Buffer.from('SQLite format 3\0')), { status: 400 });
  });
});
