import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InitFlag } from '../../src/fuse/abi.js';
import { FuseMount } from '../../src/fuse/mount.js';
import { DEFAULT_INIT_FLAGS } from '../../src/fuse/session.js';
import { LTXEncoder, checksumDatabase, formatHex16, makeHeader } from '../../src/ltx/index.js';
import type { QuarantineRequest, StoreCommand, StoreCommandResult, StoreEvent, StoreOptions } from '../../src/store/messages.js';
import { MOUNT_DIR_PREFIX } from '../helpers/mount.js';
import { skipUnless } from '../helpers/prereq.js';
import { expectSuccess, runPython, runSqlite3 } from '../helpers/sqlite-client.js';

/**
 * A replica mount (LiteFS worker, role replica) applying a series of LTX
 * files while a python3 child reads the database in a loop (ref §6.6, §9.6,
 * ARCHITECTURE §2, §3.4). The LTX files are made from real SQLite images: a
 * plain database outside the mount is changed with the sqlite3 CLI, and each
 * new image becomes the next LTX file (its changed pages).
 */
const skip = skipUnless(['root', 'fuse', 'sqlite3', 'python3-sqlite']);

const PRIMARY = 'primary-host';
const STEPS = 25;
const DEADLINE_MS = 60_000;

/** A database file outside the mount and the LTX chain of its images. */
class PlainPrimary {
  private prev = Buffer.alloc(0);
  txid = 0n;
  checksum = 0n;
  rows = 0;
  private n = 0;

  constructor(
    readonly path: string,
    private readonly tmpDir: string,
    private readonly wal: boolean,
  ) {}

  /** Runs `sql` on the plain database and returns the next LTX file (a snapshot for TXID 1). */
  async step(sql: string): Promise<string> {
    const checkpoint = this.wal ? 'PRAGMA wal_checkpoint(TRUNCATE);\n' : '';
    expectSuccess('primary sqlite3', await runSqlite3(this.path, `${sql}\n${checkpoint}`));
    const image = readFileSync(this.path);
    const pageSize = image.readUInt16BE(16) === 1 ? 65536 : image.readUInt16BE(16);
    const commit = image.length / pageSize;
    const page = (pgno: number): Buffer => image.subarray((pgno - 1) * pageSize, pgno * pageSize);
    const changed: number[] = [];
    for (let pgno = 1; pgno <= commit; pgno++) {
      const old = this.prev.subarray((pgno - 1) * pageSize, pgno * pageSize);
      if (this.txid === 0n || !old.equals(page(pgno))) changed.push(pgno);
    }
    const post = checksumDatabase(pageSize, commit, page);
    const txid = this.txid + 1n;
    const chunks: Buffer[] = [];
    const enc = new LTXEncoder({ write: (c) => chunks.push(Buffer.from(c)) });
    enc.encodeHeader(
      makeHeader({ pageSize, commit, minTXID: txid, maxTXID: txid, timestamp: BigInt(Date.now()), preApplyChecksum: txid === 1n ? 0n : this.checksum, nodeID: 99n }),
    );
    for (const pgno of changed) enc.encodePage(pgno, page(pgno));
    enc.setPostApplyChecksum(post);
    enc.close();
    const file = join(this.tmpDir, `recv-${this.wal ? 'wal' : 'del'}-${++this.n}.ltx`);
    writeFileSync(file, Buffer.concat(chunks));
    this.prev = Buffer.from(image);
    this.txid = txid;
    this.checksum = post;
    return file;
  }

  /** One transaction adding `k` rows of varied sizes. */
  async insert(k: number): Promise<string> {
    const values = Array.from({ length: k }, (_, i) => `(randomblob(${200 + ((this.rows + i) * 977) % 5000}))`).join(', ');
    this.rows += k;
    return this.step(`INSERT INTO t(y) VALUES ${values};`);
  }
}

/** Polls `cond` until it holds (the FUSE thread handles a command between two requests). */
async function eventually(what: string, cond: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + DEADLINE_MS;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`${what}: not reached within ${DEADLINE_MS} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('litefs replica: applying LTX files under concurrent readers', { skip }, () => {
  let base = '';
  let mnt = '';
  let data = '';
  let mount: FuseMount | undefined;
  let nextId = 1;
  const waiters = new Map<number, (r: StoreCommandResult) => void>();
  const events: StoreEvent[] = [];

  function send(cmd: StoreCommand): void {
    if (mount === undefined) throw new Error('not mounted');
    mount.send(cmd);
  }

  function replica(primaryTimestamp: number): void {
    send({ type: 'status', role: 'replica', primaryHostname: PRIMARY, primaryTimestamp, writeDeadline: null });
  }

  async function apply(db: string, path: string, quarantine: QuarantineRequest | null = null): Promise<StoreCommandResult> {
    const id = nextId++;
    const result = new Promise<StoreCommandResult>((resolve) => waiters.set(id, resolve));
    send({ type: 'apply', id, db, paths: [path], quarantine, syncDatabase: true });
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`apply ${id} of ${db} (${path}) got no result within ${DEADLINE_MS} ms`)), DEADLINE_MS);
    });
    try {
      return await Promise.race([result, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  async function applyOK(db: string, path: string): Promise<void> {
    const r = await apply(db, path);
    assert.equal(r.status, 'ok', `${db}: apply of ${path}: ${JSON.stringify(r)}`);
  }

  before(async () => {
    base = mkdtempSync(join(tmpdir(), `${MOUNT_DIR_PREFIX}${process.pid}-`));
    mnt = join(base, 'mnt');
    data = join(base, 'data');
    mkdirSync(mnt);
    mkdirSync(join(data, 'tmp'), { recursive: true });
    mkdirSync(join(base, 'plain'));
    const options: StoreOptions = { dataDir: data, compress: true, strictVerify: false, nodeId: 'replica1' };
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
    replica(Date.now() - 60_000);
  });

  after(async () => {
    await mount?.close();
    if (base !== '') rmSync(base, { recursive: true, force: true });
  });

  for (const mode of ['delete', 'wal'] as const) {
    test(`${mode} mode: readers see only whole transactions while ${STEPS} LTX files are applied; final content and integrity match`, async (t) => {
      const name = `${mode}.db`;
      const primary = new PlainPrimary(join(base, 'plain', name), join(data, 'tmp'), mode === 'wal');
      const journal = mode === 'wal' ? 'PRAGMA journal_mode=WAL;' : '';
      await applyOK(name, await primary.step(`${journal}\nCREATE TABLE t(id INTEGER PRIMARY KEY, y BLOB);`));
      await applyOK(name, await primary.insert(3));

      const stop = join(base, `${mode}.stop`);
      const ready = join(base, `${mode}.ready`);
      const reader = runPython('replica-reader.py', [join(mnt, name), stop, ready], { timeoutMs: 180_000 });
      try {
        const deadline = Date.now() + DEADLINE_MS;
        while (!existsSync(ready)) {
          if (Date.now() > deadline) throw new Error(`reader of ${name} did not read within ${DEADLINE_MS} ms`);
          await new Promise((r) => setTimeout(r, 20));
        }
        for (let i = 0; i < STEPS; i++) await applyOK(name, await primary.insert(1 + (i % 4)));
      } finally {
        writeFileSync(stop, '');
      }
      const out = expectSuccess(`reader of ${name}`, await reader);
      const summary = JSON.parse(out) as { reads: number; busy: number; errors: string[]; last: number; decreases: number[][] };
      assert.deepEqual(summary.errors, [], `${name}: reader errors (busy retries: ${summary.busy})`);
      assert.deepEqual(summary.decreases, [], `${name}: row count went backwards`);
      assert.ok(summary.reads > 0);
      t.diagnostic(`${name}: ${summary.reads} reads, ${summary.busy} busy`);

      const check = expectSuccess('final read', await runSqlite3(join(mnt, name), 'SELECT count(*) FROM t;\nPRAGMA integrity_check;\n'));
      assert.equal(check, `${primary.rows}\nok\n`);
      assert.ok(readFileSync(join(data, 'dbs', name, 'database')).equals(readFileSync(primary.path)), `${name}: replica file differs from the primary's`);
      assert.equal(await fsp.readFile(join(mnt, `${name}-pos`), 'utf8'), `${formatHex16(primary.txid)}/${formatHex16(primary.checksum)}\n`);

      // Writes through the mount are refused (ARCHITECTURE §2).
      const write = await runSqlite3(join(mnt, name), 'INSERT INTO t(y) VALUES (1);\n');
      assert.notEqual(write.status, 0, `${name}: a write on a replica succeeded`);
      assert.match(write.stderr, /attempt to write a readonly database|disk I\/O error/);
      await assert.rejects(fsp.unlink(join(mnt, name)), { code: 'EACCES' });
      const again = expectSuccess('read after refused write', await runSqlite3(join(mnt, name), 'SELECT count(*) FROM t;\n'));
      assert.equal(again, `${primary.rows}\n`);
    });
  }

  test('a position mismatch is answered with an error and changes nothing', async () => {
    const name = 'gap.db';
    const primary = new PlainPrimary(join(base, 'plain', name), join(data, 'tmp'), false);
    await applyOK(name, await primary.step('CREATE TABLE t(id INTEGER PRIMARY KEY, y BLOB);'));
    const pos = await fsp.readFile(join(mnt, `${name}-pos`), 'utf8');
    const image = readFileSync(join(data, 'dbs', name, 'database'));
    await primary.insert(2); // never sent
    const r = await apply(name, await primary.insert(2));
    assert.equal(r.status, 'error');
    assert.match(r.status === 'error' ? r.message : '', /position mismatch/);
    assert.equal(await fsp.readFile(join(mnt, `${name}-pos`), 'utf8'), pos);
    assert.ok(readFileSync(join(data, 'dbs', name, 'database')).equals(image), 'database file unchanged');
  });

  test('a replica refuses new databases, shows .primary and .lag; as primary again it is writable', async () => {
    const created = await runSqlite3(join(mnt, 'new.db'), 'CREATE TABLE x(a);\n');
    assert.notEqual(created.status, 0);
    assert.match(created.stderr, /readonly|unable to open|disk I\/O error/);
    const names = await fsp.readdir(mnt);
    assert.ok(names.includes('.primary') && names.includes('.lag'), names.join(' '));
    assert.ok(!names.includes('new.db'));
    assert.equal(await fsp.readFile(join(mnt, '.primary'), 'utf8'), `${PRIMARY}\n`);
    const lag = await fsp.readFile(join(mnt, '.lag'), 'utf8');
    assert.match(lag, /^\+\d{9}\n$/);
    assert.ok(Number(lag) >= 60_000, `lag ${lag.trim()} is at least the 60 s the status said`);

    // Before the first sync: LiteFS's MaxInt32 (11 bytes shown: the size is fixed).
    replica(-1);
    await eventually('.lag before sync', async () => (await fsp.readFile(join(mnt, '.lag'), 'utf8')) === '+2147483647');

    send({ type: 'status', role: 'primary', primaryHostname: '', primaryTimestamp: 0, writeDeadline: null });
    await eventually('.lag on a primary', async () => (await fsp.readFile(join(mnt, '.lag'), 'utf8')) === '+000000000\n');
    await assert.rejects(fsp.readFile(join(mnt, '.primary'), 'utf8'), { code: 'ENOENT' });
    const out = expectSuccess('write as primary', await runSqlite3(join(mnt, 'delete.db'), 'INSERT INTO t(y) VALUES (1);\nSELECT count(*) FROM t;\nPRAGMA integrity_check;\n'));
    assert.match(out, /^\d+\nok\n$/);
  });
});
