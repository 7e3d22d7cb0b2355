import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InitFlag } from '../../src/fuse/abi.js';
import { FuseMount } from '../../src/fuse/mount.js';
import { DEFAULT_INIT_FLAGS } from '../../src/fuse/session.js';
import { LTXEncoder, checksumDatabase, formatFilename, formatHex16, makeHeader } from '../../src/ltx/index.js';
import { fenceClock } from '../../src/store/fence.js';
import type { StoreCommandResult, StoreEvent, StoreOptions } from '../../src/store/messages.js';
import { MOUNT_DIR_PREFIX } from '../helpers/mount.js';
import { skipUnless } from '../helpers/prereq.js';
import { type ChildResult, expectSuccess, runPython, runSqlite3 } from '../helpers/sqlite-client.js';

/**
 * The lease fence and runtime role changes on the FUSE thread (ARCHITECTURE
 * §3.2, ref §7.3): a LiteFS mount in this process, driven with `status`
 * commands; SQLite runs only in child processes (sqlite3 CLI, python3).
 *   - a write deadline in the past: BEGIN IMMEDIATE is refused (busy),
 *     nothing commits;
 *   - a transaction holding its write lock when the deadline passes fails
 *     at COMMIT and leaves nothing;
 *   - primary → replica with a transaction in progress (spilled: database
 *     pages under a hot journal, or WAL frames without a commit frame):
 *     COMMIT fails, the database is recovered to its last LTX file exactly;
 *   - the recovered replica applies the primary's next LTX file;
 *   - replica → primary: writes work and the LTX chain continues.
 */
const skip = skipUnless(['root', 'fuse', 'sqlite3', 'python3-sqlite']);

const DEADLINE_MS = 60_000;
const PRIMARY = 'other-primary';

async function eventually(what: string, cond: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + DEADLINE_MS;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`${what}: not reached within ${DEADLINE_MS} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('litefs fence and role changes', { skip }, () => {
  let base = '';
  let mnt = '';
  let data = '';
  let mount: FuseMount | undefined;
  const events: StoreEvent[] = [];
  const waiters = new Map<number, (r: StoreCommandResult) => void>();
  let nextId = 1;

  function status(role: 'primary' | 'replica', writeDeadline: number | null): void {
    if (mount === undefined) throw new Error('not mounted');
    mount.send({
      type: 'status',
      role,
      primaryHostname: role === 'replica' ? PRIMARY : '',
      primaryTimestamp: role === 'replica' ? Date.now() : 0,
      writeDeadline,
    });
  }

  /** A status round trip: the FUSE thread handled it once `.lag` shows the role. */
  async function statusApplied(role: 'primary' | 'replica', writeDeadline: number | null): Promise<void> {
    status(role, writeDeadline);
    const names = async (): Promise<string[]> => fsp.readdir(mnt);
    await eventually(`status ${role}`, async () => (await names()).includes('.primary') === (role === 'replica'));
  }

  function ltxChain(name: string): string[] {
    return readdirSync(join(data, 'dbs', name, 'ltx'))
      .filter((n) => n.endsWith('.ltx'))
      .sort();
  }

  function fileChecksum(name: string): bigint {
    const image = readFileSync(join(data, 'dbs', name, 'database'));
    const pageSize = image.readUInt16BE(16) === 1 ? 65536 : image.readUInt16BE(16);
    return checksumDatabase(pageSize, image.length / pageSize, (pgno) => image.subarray((pgno - 1) * pageSize, pgno * pageSize));
  }

  async function pos(name: string): Promise<string> {
    return fsp.readFile(join(mnt, `${name}-pos`), 'utf8');
  }

  async function count(name: string): Promise<string> {
    return expectSuccess(`read ${name}`, await runSqlite3(join(mnt, name), '.timeout 10000\nSELECT count(*) FROM t;\nPRAGMA integrity_check;\n'));
  }

  /** Starts fence-writer.py and waits until it holds its write transaction. */
  async function heldWriter(name: string, tag: string, rows: number, cachePages: number): Promise<{ go: () => void; done: Promise<ChildResult> }> {
    const ready = join(base, `${tag}.ready`);
    const go = join(base, `${tag}.go`);
    const done = runPython('fence-writer.py', [join(mnt, name), ready, go, String(rows), String(cachePages)], { timeoutMs: 150_000 });
    let exited = false;
    void done.then(() => (exited = true));
    await eventually(`${tag}: writer holds its transaction`, () => existsSync(ready) || exited);
    if (!existsSync(ready)) throw new Error(`${tag}: writer ended early:\n${(await done).stderr}`);
    return { go: () => void fsp.writeFile(go, ''), done };
  }

  /**
   * The LTX file a primary would send next: a copy of this node's database
   * file (it equals the position) gets one more row through the sqlite3
   * CLI; the changed pages become TXID `txid`.
   */
  async function nextLTX(name: string, txid: bigint, preApply: bigint, wal: boolean): Promise<{ path: string; checksum: bigint }> {
    const plain = join(base, `plain-${name}`);
    const before = readFileSync(join(data, 'dbs', name, 'database'));
    writeFileSync(plain, before);
    const checkpoint = wal ? 'PRAGMA wal_checkpoint(TRUNCATE);\n' : '';
    expectSuccess('primary sqlite3', await runSqlite3(plain, `INSERT INTO t(v) VALUES (randomblob(700));\n${checkpoint}`));
    const image = readFileSync(plain);
    const pageSize = image.readUInt16BE(16) === 1 ? 65536 : image.readUInt16BE(16);
    const commit = image.length / pageSize;
    const page = (pgno: number): Buffer => image.subarray((pgno - 1) * pageSize, pgno * pageSize);
    const chunks: Buffer[] = [];
    const enc = new LTXEncoder({ write: (c) => chunks.push(Buffer.from(c)) });
    enc.encodeHeader(makeHeader({ pageSize, commit, minTXID: txid, maxTXID: txid, timestamp: BigInt(Date.now()), preApplyChecksum: preApply, nodeID: 99n }));
    for (let pgno = 1; pgno <= commit; pgno++) {
      if (!before.subarray((pgno - 1) * pageSize, pgno * pageSize).equals(page(pgno))) enc.encodePage(pgno, page(pgno));
    }
    const checksum = checksumDatabase(pageSize, commit, page);
    enc.setPostApplyChecksum(checksum);
    enc.close();
    const path = join(data, 'tmp', `recv-${name}-${txid}.ltx`);
    writeFileSync(path, Buffer.concat(chunks));
    return { path, checksum };
  }

  async function apply(db: string, path: string): Promise<StoreCommandResult> {
    if (mount === undefined) throw new Error('not mounted');
    const id = nextId++;
    const result = new Promise<StoreCommandResult>((resolve) => waiters.set(id, resolve));
    mount.send({ type: 'apply', id, db, paths: [path], quarantine: null, syncDatabase: true });
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`apply ${id} of ${db} got no result within ${DEADLINE_MS} ms`)), DEADLINE_MS);
    });
    try {
      return await Promise.race([result, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  before(async () => {
    base = mkdtempSync(join(tmpdir(), `${MOUNT_DIR_PREFIX}${process.pid}-`));
    mnt = join(base, 'mnt');
    data = join(base, 'data');
    mkdirSync(mnt);
    mkdirSync(join(data, 'tmp'), { recursive: true });
    const options: StoreOptions = { dataDir: data, compress: false, strictVerify: true, nodeId: 'fence1' };
    mount = await FuseMount.mount({
      mountpoint: mnt,
      workerScript: new URL('../../src/fs/worker.js', import.meta.url),
      workerData: options,
      fsName: 'litefs',
      fsType: 'litefs',
      initFlags: DEFAULT_INIT_FLAGS & ~(InitFlag.DO_READDIRPLUS | InitFlag.READDIRPLUS_AUTO),
      handleSignals: false,
    });
    mount.on('message', (msg: unknown) => {
      const event = msg as StoreEvent;
      events.push(event);
      if (event.type === 'commandResult') waiters.get(event.id)?.(event);
    });
  });

  after(async () => {
    await mount?.close();
    if (base !== '') rmSync(base, { recursive: true, force: true });
  });

  for (const mode of ['delete', 'wal'] as const) {
    test(`${mode} mode: deadline refuses new writers and commits; step-down recovers to the last LTX; primary again continues the chain`, async (t) => {
      const name = `${mode}.db`;
      await statusApplied('primary', null);
      const journal = mode === 'wal' ? 'PRAGMA journal_mode=WAL;\n' : '';
      expectSuccess(
        'create',
        await runSqlite3(join(mnt, name), `${journal}CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB);\nINSERT INTO t(v) VALUES (randomblob(600)), (randomblob(600)), (randomblob(600));\n`),
      );
      const chain0 = ltxChain(name);
      const pos0 = await pos(name);
      const txEvents = (): number => events.filter((e) => e.type === 'tx' && e.db === name).length;
      const tx0 = txEvents();
      assert.equal(await count(name), '3\nok\n');

      // 1. Deadline already passed: a new write transaction is refused (SQLITE_BUSY).
      status('primary', fenceClock() - 1);
      let last = '';
      await eventually('fenced', async () => {
        const r = await runSqlite3(join(mnt, name), '.timeout 100\nBEGIN IMMEDIATE;\nINSERT INTO t(v) VALUES (1);\nCOMMIT;\n');
        last = `status ${r.status}: ${r.stderr}`;
        return r.status !== 0 && /database is locked/.test(r.stderr);
      }).catch((err: Error) => {
        throw new Error(`${err.message}; last attempt: ${last}`);
      });
      assert.deepEqual(ltxChain(name), chain0);
      assert.equal(await pos(name), pos0);
      assert.equal(await count(name), '3\nok\n', 'readers still work while fenced');

      // 2. A transaction holding its write lock when the deadline passes fails at COMMIT.
      await statusApplied('replica', null);
      await statusApplied('primary', fenceClock() + 120_000);
      const held = await heldWriter(name, `${mode}-deadline`, 20, 2000);
      status('primary', fenceClock() - 1);
      // The status is handled between two requests: any request after it sees it.
      await eventually('deadline in force', async () => {
        const r = await runSqlite3(join(mnt, name), '.timeout 50\nBEGIN IMMEDIATE;\nROLLBACK;\n');
        return r.status !== 0;
      });
      held.go();
      const deadlineOut = JSON.parse(expectSuccess('deadline writer', await held.done)) as { commit: string; message?: string };
      assert.equal(deadlineOut.commit, 'error', `${name}: commit after the deadline succeeded`);
      t.diagnostic(`${name}: commit after the deadline: ${deadlineOut.message ?? ''}`);
      assert.deepEqual(ltxChain(name), chain0);
      assert.equal(await pos(name), pos0);
      assert.equal(await count(name), '3\nok\n');
      assert.equal(txEvents(), tx0, 'no commit was published');

      // 3. Step-down with a spilled transaction in progress.
      await statusApplied('primary', null);
      const spilled = await heldWriter(name, `${mode}-stepdown`, 3000, 5);
      if (mode === 'delete') assert.ok(existsSync(join(data, 'dbs', name, 'journal')), 'the writer has a journal');
      await statusApplied('replica', null);
      spilled.go();
      const stepOut = JSON.parse(expectSuccess('step-down writer', await spilled.done)) as { commit: string; message?: string };
      assert.equal(stepOut.commit, 'error', `${name}: commit after step-down succeeded`);
      t.diagnostic(`${name}: commit after step-down: ${stepOut.message ?? ''}`);
      await eventually('journal rolled back', () => !existsSync(join(data, 'dbs', name, 'journal')));
      assert.equal(await count(name), '3\nok\n', 'readers on the replica see the last LTX state');
      const walPath = join(data, 'dbs', name, 'wal');
      if (existsSync(walPath)) assert.ok(readFileSync(walPath).length <= 32, 'no WAL frames past the last LTX');
      assert.deepEqual(ltxChain(name), chain0);
      assert.equal(await pos(name), pos0);
      assert.equal(`${formatHex16(fileChecksum(name))}`, pos0.trim().split('/')[1], 'database file checksum equals the position');
      assert.equal(txEvents(), tx0, 'no commit was published');
      const refused = await runSqlite3(join(mnt, name), 'INSERT INTO t(v) VALUES (1);\n');
      assert.notEqual(refused.status, 0, 'a replica refuses writes');

      // 3b. As a replica it takes the primary's next transaction.
      const txid0 = BigInt(`0x${pos0.split('/')[0]}`);
      const checksum0 = BigInt(`0x${pos0.trim().split('/')[1]}`);
      const next = await nextLTX(name, txid0 + 1n, checksum0, mode === 'wal');
      const r = await apply(name, next.path);
      assert.equal(r.status, 'ok', JSON.stringify(r));
      assert.equal(await count(name), '4\nok\n');
      assert.equal(await pos(name), `${formatHex16(txid0 + 1n)}/${formatHex16(next.checksum)}\n`);

      // 4. Primary again: writes work and the chain continues.
      await statusApplied('primary', null);
      expectSuccess('write as primary again', await runSqlite3(join(mnt, name), '.timeout 10000\nINSERT INTO t(v) VALUES (randomblob(10));\n'));
      assert.equal(await count(name), '5\nok\n');
      assert.deepEqual(ltxChain(name), [...chain0, formatFilename(txid0 + 1n, txid0 + 1n), formatFilename(txid0 + 2n, txid0 + 2n)].sort());
      assert.equal(txEvents(), tx0 + 2);
      assert.ok(!events.some((e) => e.type === 'fatal'), JSON.stringify(events.filter((e) => e.type === 'fatal')));
    });
  }
});
