import { readFileSync } from 'node:fs';
import { fixture } from '../../helpers/paths.js';
import type { FuzzTarget } from '../target.js';
import { SqliteFormatError } from '../../../src/sqlite/errors.js';
import { parseShmHeader } from '../../../src/sqlite/shm.js';
import { shmFindFrame, shmIndexFrame } from '../../../src/sqlite/shm-index.js';

export const target: FuzzTarget = {
  name: 'sqlite-shm',
  seeds: () => [readFileSync(fixture('ltx', 'sqlite-generated', 'wal-live-with-shm', 'snap.db-shm'))],
  run(input) {
    const shm = parseShmHeader(input);
    const { mxFrame, nPage } = shm.copy1;
    for (let pgno = 1; pgno <= 4; pgno++) shmFindFrame(input, pgno, mxFrame, 1 + shm.checkpoint.nBackfill);
    // Appending the next frame must either work or report corruption.
    shmIndexFrame(Buffer.from(input), mxFrame + 1, 1 + (nPage % 1000));
  },
  isExpected: (err) => err instanceof SqliteFormatError,
};
