import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { ApiError } from '../../../src/http/api.js';
import { formatHaltLock, parseHaltLock } from '../../../src/http/halt-lock.js';
import { LTXEncoder, checksumDatabase, makeHeader } from '../../../src/ltx/index.js';
import type { StoreCommand, StoreCommandResult } from '../../../src/store/messages.js';
import { HaltService } from '../../../src/node/halt-service.js';
import { StoreChannel } from '../../../src/node/store-channel.js';

/**
 * The primary's HALT locks on the main thread (src/node/halt-service.ts).
 * The FUSE thread that holds the lock sets is stood in for by `answer`:
 * this tests the main thread's retries, clock and checks, with the real
 * store covered by test/cluster/halt.test.ts.
 */
describe('HALT lock JSON (ref §8.2)', () => {
  test('the id keeps all 63 bits; pos as Go encodes ltx.Pos; expires as RFC 3339', () => {
    const lock = { id: 0x7fffffffffffffffn, pos: { txid: 0x1234n, postApplyChecksum: 0xfedcba9876543210n }, expires: Date.parse('2026-12-08T01:02:03.450Z') };
    const text = formatHaltLock(lock);
    assert.equal(text, '{"id":9223372036854775807,"pos":{"TXID":"0000000000001234","PostApplyChecksum":"fedcba9876543210"},"expires":"2026-12-08T01:02:03.45Z"}');
    assert.deepEqual(parseHaltLock(text), lock);
    // Go's nanoseconds and a lock without expiry.
    assert.deepEqual(parseHaltLock('{"id":5,"pos":{"TXID":"0000000000000001","PostApplyChecksum":"0000000000000002"},"expires":"2026-11-23T21:17:01.123456789Z"}'), {
      id: 5n,
      pos: { txid: 1n, postApplyChecksum: 2n },
      expires: Date.parse('2026-11-23T21:17:01.123Z'),
    });
    assert.deepEqual(parseHaltLock('{"id":5,"pos":null}').expires, null);
    assert.throws(() => parseHaltLock('[]'), /not a JSON object/);
  });
});

describe('HaltService', () => {
  let dataDir: string;
  let commands: StoreCommand[];
  let answer: (cmd: StoreCommand) => StoreCommandResult;
  let primary: boolean;
  let logs: string[];
  let service: HaltService;

  const ok = (id: number): StoreCommandResult => ({ type: 'commandResult', id, status: 'ok', inodes: [], pos: { txid: '0000000000000003', checksum: '00000000000000ab' } });

  let streaming: Set<bigint>;

  function make(ttlMs = 60_000, acquireTimeoutMs = 10_000): HaltService {
    const channel: StoreChannel = new StoreChannel((cmd) => {
      commands.push(cmd);
      queueMicrotask(() => channel.onResult(answer(cmd)));
    });
    return new HaltService({
      channel,
      dataDir,
      isPrimary: () => primary,
      position: (db) => (db === 'new.db' ? undefined : { txid: 3n, postApplyChecksum: 0xabn }),
      isStreaming: (id) => streaming.has(id),
      log: (l) => logs.push(l),
      ttlMs,
      acquireTimeoutMs,
      holderGoneMs: 30,
      holderCheckMs: 10,
    });
  }

  beforeEach(() => {
    dataDir = mkdtempSync(join(tmpdir(), 'litefs-halt-service-'));
    commands = [];
    logs = [];
    primary = true;
    streaming = new Set([0x42n]);
    answer = (cmd) => ok((cmd as { id: number }).id);
    service = make();
  });
  afterEach(() => {
    service.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('acquire answers with the position the FUSE thread gives, retrying while it is busy', async () => {
    let busy = 3;
    answer = (cmd) => {
      const id = (cmd as { id: number }).id;
      return busy-- > 0 ? { type: 'commandResult', id, status: 'busy' } : ok(id);
    };
    const lock = await service.acquire('a.db', 42n, new AbortController().signal);
    assert.deepEqual([lock.id, lock.pos], [42n, { txid: 3n, postApplyChecksum: 0xabn }]);
    assert.equal(commands.length, 4);
    assert.deepEqual(commands.map((c) => c.type), ['haltLock', 'haltLock', 'haltLock', 'haltLock']);
  });

  test('acquire refuses a replica node, id 0 and a bad name, and gives up after its timeout', async () => {
    const signal = new AbortController().signal;
    await assert.rejects(service.acquire('a.db', 0n, signal), /invalid lock id/);
    await assert.rejects(service.acquire('../x', 1n, signal), (e: unknown) => e instanceof ApiError && e.status === 400);
    primary = false;
    await assert.rejects(service.acquire('a.db', 1n, signal), /not the primary/);
    primary = true;
    service.close();
    service = make(60_000, 30);
    answer = (cmd) => ({ type: 'commandResult', id: (cmd as { id: number }).id, status: 'busy' });
    await assert.rejects(service.acquire('a.db', 1n, signal), /timed out: a.db stayed locked/);
  });

  test('a lock not renewed within its TTL is released; release and expiry send haltUnlock', async () => {
    service.close();
    service = make(30);
    await service.acquire('a.db', 7n, new AbortController().signal);
    const deadline = Date.now() + 10_000;
    while (!commands.some((c) => c.type === 'haltUnlock') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(commands.at(-1), { type: 'haltUnlock', id: 2, db: 'a.db', lockID: '7' });
    assert.match(logs.join('\n'), /HALT lock 7 released: expired after 30 ms without renewal/);
  });

  test("a lock whose replica stopped streaming is released after holderGoneMs; one whose replica streams, or is unknown, stays", async () => {
    const signal = new AbortController().signal;
    await service.acquire('a.db', 7n, signal, 0x42n);
    await service.acquire('b.db', 8n, signal, 0n);
    await new Promise((r) => setTimeout(r, 100));
    assert.ok(!commands.some((c) => c.type === 'haltUnlock'), 'both kept while the holder streams (or cannot be told)');
    streaming.delete(0x42n);
    const deadline = Date.now() + 10_000;
    while (!commands.some((c) => c.type === 'haltUnlock') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(commands.filter((c) => c.type === 'haltUnlock').map((c) => [(c as { db: string }).db, (c as { lockID: string }).lockID]), [['a.db', '7']]);
    assert.match(logs.join('\n'), /a\.db: HALT lock 7 released: its replica has not streamed from this node for 30 ms/);
  });

  test('POST /tx: refused without the lock (409), TXID 1 onto a database with data (400); applied under the lock id and the file removed', async () => {
    const signal = new AbortController().signal;
    const body = (minTXID: bigint): AsyncIterable<Uint8Array> => (async function* () {
      yield ltxFile(minTXID);
    })();
    await assert.rejects(service.applyTx('a.db', '7', body(4n), signal), (e: unknown) => e instanceof ApiError && e.status === 409);
    await assert.rejects(service.applyTx('a.db', 'x', body(4n), signal), (e: unknown) => e instanceof ApiError && e.status === 400);
    await service.acquire('a.db', 7n, signal);
    await assert.rejects(service.applyTx('a.db', '7', body(1n), signal), (e: unknown) => e instanceof ApiError && e.status === 400);
    // A new database's first transaction.
    await service.acquire('new.db', 8n, signal);
    await service.applyTx('new.db', '8', body(1n), signal);
    await service.applyTx('a.db', '7', body(4n), signal);
    const apply = commands.at(-1);
    assert.ok(apply?.type === 'apply');
    assert.deepEqual([apply.db, apply.haltLockID, apply.quarantine, apply.syncDatabase], ['a.db', '7', null, true]);
    assert.deepEqual(readdirSync(join(dataDir, 'tmp')), [], 'the received file is gone (the FUSE thread moves applied ones)');
    answer = (cmd) => ({ type: 'commandResult', id: (cmd as { id: number }).id, status: 'error', message: 'position mismatch' });
    await assert.rejects(service.applyTx('a.db', '7', body(5n), signal), (e: unknown) => e instanceof ApiError && e.status === 500 && /position mismatch/.test(e.message));
  });
});

/** One page, TXID `minTXID` (1 makes it a snapshot). */
function ltxFile(minTXID: bigint): Buffer {
  const parts: Buffer[] = [];
  const enc = new LTXEncoder({ write: (c) => parts.push(Buffer.from(c)) });
  const pg = Buffer.alloc(512, 1);
  enc.encodeHeader(makeHeader({ pageSize: 512, commit: 1, minTXID, maxTXID: minTXID, timestamp: 1n, preApplyChecksum: minTXID === 1n ? 0n : 0x8000000000000001n }));
  enc.encodePage(1, pg);
  enc.setPostApplyChecksum(checksumDatabase(512, 1, () => pg));
  enc.close();
  return Buffer.concat(parts);
}
