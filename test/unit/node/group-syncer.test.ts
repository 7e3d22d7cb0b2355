import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GroupSyncer } from '../../../src/node/group-syncer.js';
import type { GroupSyncJob, GroupSyncedCommand } from '../../../src/store/messages.js';

/** The syncer thread for real: jobs run on a worker thread and each comes back as a `groupSynced` command. */
describe('node: GroupSyncer', () => {
  test('jobs are synced on the syncer thread and reported in order; an I/O error is reported as not ok and logged', async () => {
    const base = mkdtempSync(join(tmpdir(), 'litefs-syncer-'));
    const reports: GroupSyncedCommand[] = [];
    const logs: string[] = [];
    let done: () => void = () => {};
    const all = new Promise<void>((resolve) => (done = resolve));
    const syncer = new GroupSyncer(
      (cmd) => {
        reports.push(cmd);
        if (reports.length === 3) done();
      },
      (line) => logs.push(line),
    );
    try {
      const dir = join(base, 'dbs', 'a.db');
      const ltxDir = join(dir, 'ltx');
      mkdirSync(ltxDir, { recursive: true });
      const files = [1, 2].map((i) => join(ltxDir, `${i}.ltx`));
      for (const f of files) writeFileSync(f, 'x');
      writeFileSync(join(dir, 'wal'), 'w');
      writeFileSync(join(dir, 'database'), 'd');
      const job: GroupSyncJob = { db: 'a.db', gen: 1, dir, walPath: join(dir, 'wal'), ltxDir, files, databasePath: join(dir, 'database') };
      // A database dropped meanwhile: nothing left to sync is not an error.
      const gone: GroupSyncJob = { ...job, db: 'b.db', gen: 7, dir: join(base, 'gone'), walPath: join(base, 'gone', 'wal'), ltxDir: join(base, 'gone', 'ltx'), files: [join(base, 'gone', 'ltx', '1.ltx')], databasePath: null };
      // A path that cannot be opened for another reason (a file where a folder should be).
      const broken: GroupSyncJob = { ...job, db: 'c.db', gen: 3, files: [], databasePath: join(files[0]!, 'database') };
      syncer.run([job, gone]);
      syncer.run([broken]);
      await all;
      assert.deepEqual(reports, [
        { type: 'groupSynced', db: 'a.db', gen: 1, ok: true },
        { type: 'groupSynced', db: 'b.db', gen: 7, ok: true },
        { type: 'groupSynced', db: 'c.db', gen: 3, ok: false },
      ]);
      assert.equal(logs.length, 1);
      assert.match(logs[0]!, /c\.db: group sync failed .*ENOTDIR/);
    } finally {
      await syncer.close();
      rmSync(base, { recursive: true, force: true });
    }
  });
});
