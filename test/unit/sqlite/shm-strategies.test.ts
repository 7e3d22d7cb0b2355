import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { bufferReader } from '../../../src/sqlite/positional.js';
import { parseDatabaseHeader } from '../../../src/sqlite/header.js';
import { scanWal } from '../../../src/sqlite/wal-reader.js';
import { buildWalHeader, encodeWalFrame, WAL_FRAME_HEADER_SIZE } from '../../../src/sqlite/wal.js';
import { buildEmptyWalShmHeader, parseShmHeader, shmStateAfterCommit, writeShmHeader } from '../../../src/sqlite/shm.js';
import { shmIndexFrame, shmSizeForFrames } from '../../../src/sqlite/shm-index.js';
import { skipUnless } from '../../helpers/prereq.js';
import { withTempDirAsync } from './helpers.js';

const skip = skipUnless(['python3-sqlite']);

/** A python3 process holding one open SQLite connection, answering one SQL statement per line with JSON rows. */
class LiveReader {
  private readonly proc: ChildProcessWithoutNullStreams;
  private readonly waiting: Array<(line: string) => void> = [];

  constructor(db: string) {
    const script = [
      'import sqlite3, sys, json',
      'c = sqlite3.connect(sys.argv[1], isolation_level=None)',
      'for line in sys.stdin:',
      '    try: print(json.dumps(c.execute(line).fetchall()), flush=True)',
      '    except Exception as e: print(json.dumps("ERR " + str(e)), flush=True)',
    ].join('\n');
    this.proc = spawn('python3', ['-c', script, db]);
    createInterface({ input: this.proc.stdout }).on('line', (line) => this.waiting.shift()?.(line));
  }

  query(sql: string): Promise<unknown> {
    return new Promise((resolve) => {
      this.waiting.push((line) => resolve(JSON.parse(line)));
      this.proc.stdin.write(`${sql.replace(/\n/g, ' ')}\n`);
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.proc.on('exit', () => resolve());
      this.proc.stdin.end();
    });
  }
}

function python(args: string[]): void {
  const res = spawnSync('python3', args, { encoding: 'utf8' });
  assert.equal(res.status, 0, res.stderr);
}

/** A WAL-mode database with one row, closed (no -wal/-shm left). */
function createWalDatabase(db: string): void {
  python(['-c', "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('PRAGMA journal_mode=WAL'); c.execute('CREATE TABLE t(x)'); c.execute(\"INSERT INTO t VALUES('row0')\"); c.commit(); c.close()", db]);
}

/**
 * Lets SQLite commit `sql` on a copy of the database and captures the WAL it
 * wrote (the writer exits without checkpointing): a source of real page
 * images for the transaction.
 */
function captureTransaction(db: string, sql: string, capturedWal: string): void {
  const copy = `${db}.writer`;
  writeFileSync(copy, readFileSync(db));
  python([
    '-c',
    "import sqlite3,sys,shutil,os; c=sqlite3.connect(sys.argv[1], isolation_level=None); c.execute('PRAGMA wal_autocheckpoint=0'); c.execute(sys.argv[3]); shutil.copy(sys.argv[1]+'-wal', sys.argv[2]); os._exit(0)",
    copy,
    capturedWal,
    sql,
  ]);
}

/** pgno → page image of the last committed version in a captured WAL. */
function committedPages(wal: Buffer): { pages: Map<number, Buffer>; nPage: number; pageSize: number } {
  const scan = scanWal(bufferReader(wal));
  const pages = new Map<number, Buffer>();
  for (const [pgno, off] of [...scan.frameOffsets].sort((a, b) => a[0] - b[0])) {
    const start = off + WAL_FRAME_HEADER_SIZE;
    pages.set(pgno, wal.subarray(start, start + scan.header.pageSize));
  }
  return { pages, nPage: scan.nPage, pageSize: scan.header.pageSize };
}

describe('wal-index strategies against a live SQLite reader', () => {
  test('strategy 1: frames we append to the WAL and index in -shm are visible to an open connection', { skip }, async () => {
    await withTempDirAsync(async (dir) => {
      const db = join(dir, 'live.db');
      createWalDatabase(db);
      const reader = new LiveReader(db);
      try {
        assert.deepEqual(await reader.query('SELECT x FROM t'), [['row0']]);
        captureTransaction(db, "INSERT INTO t VALUES('row1')", join(dir, 'captured.wal'));
        const tx = committedPages(readFileSync(join(dir, 'captured.wal')));

        const shm = Buffer.from(readFileSync(`${db}-shm`));
        const before = parseShmHeader(shm);
        assert.equal(before.valid, true);
        assert.equal(before.copy1.mxFrame, 0, 'WAL empty, so a new WAL header comes first');
        assert.equal(statSync(`${db}-wal`).size, 0);

        const { bytes: walHeader, header } = buildWalHeader({ bigEndianChecksum: false, pageSize: tx.pageSize, checkpointSeq: 0, salt1: 0x11223344, salt2: 0x55667788 });
        const parts = [walHeader];
        let checksum = header.checksum;
        const index = Buffer.alloc(Math.max(shm.length, shmSizeForFrames(tx.pages.size)));
        shm.copy(index);
        let frame = 0;
        for (const [pgno, page] of tx.pages) {
          frame++;
          const encoded = encodeWalFrame(header, checksum, pgno, frame === tx.pages.size ? tx.nPage : 0, page);
          parts.push(encoded.bytes);
          checksum = encoded.checksum;
          shmIndexFrame(index, frame, pgno);
        }
        writeFileSync(`${db}-wal`, Buffer.concat(parts));
        const next = shmStateAfterCommit(
          { header: before.copy1, checkpoint: before.checkpoint },
          { pageSize: tx.pageSize, mxFrame: frame, nPage: tx.nPage, frameChecksum: checksum, newWalHeader: header },
        );
        writeShmHeader(index, next.header, next.checkpoint);
        writeFileSync(`${db}-shm`, index);

        assert.deepEqual(await reader.query('SELECT x FROM t ORDER BY rowid'), [['row0'], ['row1']]);
        assert.deepEqual(await reader.query('PRAGMA integrity_check'), [['ok']]);
        // SQLite used our index rather than rebuilding it: recovery would have
        // rewritten the header (iChange 0, nBackfillAttempted = mxFrame).
        const after = parseShmHeader(readFileSync(`${db}-shm`));
        assert.ok(readFileSync(`${db}-shm`).subarray(0, 96).equals(index.subarray(0, 96)), 'header copies unchanged');
        assert.equal(after.checkpoint.nBackfillAttempted, 0);
        assert.equal(after.checkpoint.readMarks[1], frame, 'the reader took read mark 1 at our mxFrame');
      } finally {
        await reader.close();
      }
    });
  });

  test('strategy 2: pages written into the database file plus an empty-WAL header are visible', { skip }, async () => {
    await withTempDirAsync(async (dir) => {
      const db = join(dir, 'live.db');
      createWalDatabase(db);
      const reader = new LiveReader(db);
      try {
        assert.deepEqual(await reader.query('SELECT x FROM t'), [['row0']]);
        captureTransaction(db, "INSERT INTO t VALUES('row1'), ('row2')", join(dir, 'captured.wal'));
        const tx = committedPages(readFileSync(join(dir, 'captured.wal')));

        const file = Buffer.alloc(tx.nPage * tx.pageSize);
        readFileSync(db).copy(file);
        for (const [pgno, page] of tx.pages) page.copy(file, (pgno - 1) * tx.pageSize);
        writeFileSync(db, file);
        assert.equal(parseDatabaseHeader(file).mode, 'wal');

        const shm = Buffer.from(readFileSync(`${db}-shm`));
        const previous = parseShmHeader(shm);
        buildEmptyWalShmHeader({
          previous: previous.copy1,
          pageSize: tx.pageSize,
          nPage: tx.nPage,
          frameChecksum: previous.copy1.frameChecksum,
          salt1: previous.copy1.salt1,
          salt2: previous.copy1.salt2,
        }).copy(shm);
        writeFileSync(`${db}-shm`, shm.subarray(0, 32768));

        assert.deepEqual(await reader.query('SELECT x FROM t ORDER BY rowid'), [['row0'], ['row1'], ['row2']]);
        assert.deepEqual(await reader.query('PRAGMA integrity_check'), [['ok']]);
      } finally {
        await reader.close();
      }
    });
  });

  test('control: without a header change the open connection keeps its stale pages', { skip }, async () => {
    await withTempDirAsync(async (dir) => {
      const db = join(dir, 'live.db');
      createWalDatabase(db);
      const reader = new LiveReader(db);
      try {
        assert.deepEqual(await reader.query('SELECT x FROM t'), [['row0']]);
        captureTransaction(db, "INSERT INTO t VALUES('row1')", join(dir, 'captured.wal'));
        const tx = committedPages(readFileSync(join(dir, 'captured.wal')));
        const file = Buffer.alloc(tx.nPage * tx.pageSize);
        readFileSync(db).copy(file);
        for (const [pgno, page] of tx.pages) page.copy(file, (pgno - 1) * tx.pageSize);
        writeFileSync(db, file);
        assert.deepEqual(await reader.query('SELECT x FROM t'), [['row0']]);
      } finally {
        await reader.close();
      }
    });
  });
});

