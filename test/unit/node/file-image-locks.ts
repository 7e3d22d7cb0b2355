import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { HeldImage, ImageLocks } from '../../../src/node/image-spool.js';
import { latestLTXFacts } from '../../../src/node/ltx-facts.js';
import { bufferReader, decodePageSize, scanWal } from '../../../src/sqlite/index.js';

/**
 * Stands in for the FUSE thread's read locks, which a unit test has no mount
 * for: a "hold" captures what the store would know from the files of a
 * quiet data directory (the position of the newest LTX file, the database
 * header's page size and count, the WAL's committed frames). `holds` and
 * `releases` count calls.
 */
export class FileImageLocks implements ImageLocks {
  holds = 0;
  releases = 0;

  constructor(private readonly dataDir: string) {}

  async hold(db: string, signal: AbortSignal): Promise<HeldImage> {
    if (signal.aborted) throw new Error(`${db}: cancelled while waiting for its read locks`);
    const facts = latestLTXFacts(this.dataDir, db);
    if (facts === undefined) throw new Error(`database not found: ${db}`);
    this.holds++;
    const dir = join(this.dataDir, 'dbs', db);
    const pos = { txid: facts.header.maxTXID, postApplyChecksum: facts.postApplyChecksum };
    const release = (): void => void this.releases++;
    if (!existsSync(join(dir, 'database'))) return { pos, pageSize: 0, pageCount: 0, walFrames: new Map(), release };
    const file = readFileSync(join(dir, 'database'));
    const pageSize = decodePageSize(file.readUInt16BE(16));
    let pageCount = file.readUInt32BE(28) || file.length / pageSize;
    let walFrames = new Map<number, number>();
    if (existsSync(join(dir, 'wal'))) {
      const scan = scanWal(bufferReader(readFileSync(join(dir, 'wal'))));
      if (scan.mxFrame > 0) {
        pageCount = scan.nPage;
        walFrames = new Map(scan.frameOffsets);
      }
    }
    return { pos, pageSize, pageCount, walFrames, release };
  }
}
