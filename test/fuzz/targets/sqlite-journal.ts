import { readFileSync } from 'node:fs';
import { fixture } from '../../helpers/paths.js';
import type { FuzzTarget } from '../target.js';
import { SqliteFormatError } from '../../../src/sqlite/errors.js';
import { buildJournalHeader, buildJournalRecord, JournalReader } from '../../../src/sqlite/journal.js';
import { bufferReader } from '../../../src/sqlite/positional.js';
import { applyRollbackPlan, planRollback } from '../../../src/sqlite/rollback.js';

/** A no-sync journal (nRec 0xFFFFFFFF) with 512-byte pages. */
function noSyncJournal(): Buffer {
  const header = buildJournalHeader({ nRec: 0xffffffff, nonce: 42, initialPageCount: 5, sectorSize: 512, pageSize: 512 });
  return Buffer.concat([header, ...[1, 2, 3].map((pgno) => buildJournalRecord(pgno, Buffer.alloc(512, pgno), 42))]);
}

function exercise(input: Buffer, nRecZero: 'hot' | 'own'): void {
  const src = bufferReader(input);
  const plan = planRollback(new JournalReader(src, { nRecZero, databasePageSize: 1024 }));
  if (plan === null) return;
  // Apply to a target that only counts, so a huge initial size allocates nothing.
  let writes = 0;
  applyRollbackPlan(plan, src, { writeAt: () => void writes++, truncate: () => undefined });
  if (writes !== plan.pages.size) throw new Error('apply wrote a different number of pages than planned');
}

export const target: FuzzTarget = {
  name: 'sqlite-journal',
  seeds: () => [
    readFileSync(fixture('ltx', 'sqlite-generated', 'journal-crafted', 'jc.db-journal')),
    readFileSync(fixture('ltx', 'sqlite-generated', 'hot-journal-multisegment', 'hot.db-journal')).subarray(0, 12288),
    noSyncJournal(),
  ],
  run(input) {
    exercise(input, 'hot');
    exercise(input, 'own');
  },
  isExpected: (err) => err instanceof SqliteFormatError,
};
