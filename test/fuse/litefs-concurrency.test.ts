import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatHex16 } from '../../src/ltx/index.js';
import { type LiteFSDaemon, assertChain, fileChecksum, readLTXFiles, replay, startLiteFS } from '../helpers/litefs-daemon.js';
import { skipUnless } from '../helpers/prereq.js';
import { expectSuccess, runPython } from '../helpers/sqlite-client.js';

/**
 * One writer and three readers (test/programs/sqlite-rw.py, each its own
 * process) on a database in the LiteFS mount: the lock emulation must keep
 * SQLite consistent, and every commit the writer saw succeed must be exactly
 * one LTX file, however the locks interleaved.
 */
const READERS = 3;
const SECONDS = 4;

const skip = skipUnless(['root', 'fuse', 'python3-sqlite']);

interface WriterReport {
  committed: number;
  busy: number;
  errors: string[];
}
interface ReaderReport {
  reads: number;
  busy: number;
  errors: string[];
}
interface CheckReport {
  integrity: string[];
  count: number;
}

describe('litefs mount: concurrent SQLite writer and readers', { skip }, () => {
  let daemon: LiteFSDaemon;
  before(async () => {
    // Uncompressed LTX files here; the other suites use LZ4 (LiteFS's default).
    daemon = await startLiteFS({ compress: false });
  });
  after(async () => {
    await daemon?.close();
  });

  for (const mode of ['WAL', 'DELETE'] as const) {
    test(`journal_mode=${mode}: 1 writer + ${READERS} readers, no errors, one LTX per commit, checksums agree`, async (t) => {
      const name = `rw-${mode.toLowerCase()}.db`;
      const db = join(daemon.mnt, name);
      const fail = (what: string, r: Awaited<ReturnType<typeof runPython>>): string => {
        try {
          return expectSuccess(what, r);
        } catch (err) {
          throw new Error(`${(err as Error).message}\n--- litefs output ---\n${daemon.output().slice(-4000)}`);
        }
      };
      fail('init', await runPython('sqlite-rw.py', ['init', db, mode]));
      // init: CREATE TABLE ×2 and one INSERT, plus the WAL header switch.
      const initCommits = mode === 'WAL' ? 4 : 3;
      const limit = { timeoutMs: (SECONDS + 60) * 1000 };
      const [writerRes, ...readerRes] = await Promise.all([
        runPython('sqlite-rw.py', ['writer', db, String(SECONDS)], limit),
        ...Array.from({ length: READERS }, () => runPython('sqlite-rw.py', ['reader', db, String(SECONDS)], limit)),
      ]);
      const writer = JSON.parse(fail('writer', writerRes)) as WriterReport;
      const readers = readerRes.map((r, i) => JSON.parse(fail(`reader ${i}`, r)) as ReaderReport);
      const summary = `writer committed ${writer.committed} (busy ${writer.busy}); ${readers.map((r) => `${r.reads} reads/${r.busy} busy`).join(', ')}`;
      t.diagnostic(summary);
      assert.deepEqual(writer.errors, [], summary);
      readers.forEach((r, i) => assert.deepEqual(r.errors, [], `reader ${i}: ${summary}`));
      assert.ok(writer.committed >= 10, `writer made too little progress: ${summary}`);

      const check = JSON.parse(fail('check', await runPython('sqlite-rw.py', ['check', db]))) as CheckReport;
      assert.deepEqual(check.integrity, ['ok']);
      assert.equal(check.count, writer.committed);

      const files = readLTXFiles(daemon, name);
      assert.equal(files.length, initCommits + writer.committed, `${name}: LTX files vs commits (${summary})`);
      assertChain(name, files);
      const last = files.at(-1)!;
      assert.equal(readFileSync(join(daemon.mnt, `${name}-pos`), 'utf8'), `${formatHex16(last.header.maxTXID)}/${formatHex16(last.postApply)}\n`);
      // The last connection closed: SQLite checkpointed the WAL into the file.
      const image = readFileSync(daemon.databasePath(name));
      assert.equal(formatHex16(fileChecksum(image, last.header.pageSize)), formatHex16(last.postApply), `${name}: database checksum`);
      assert.ok(replay(files).equals(image), `${name}: replaying the LTX files does not reproduce the database file`);
    });
  }
});
