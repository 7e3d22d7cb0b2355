/**
 * ARCHITECTURE §3.1: an empty or behind candidate must not win the lease
 * over a node that has more data. Pure comparison of two position records.
 */
import type { PositionRecord } from '../lease/lease.js';

/** The first database in which `mine` is behind `theirs`. */
export interface Gap {
  readonly db: string;
  readonly local: bigint;
  readonly theirs: bigint;
}

/**
 * Null when `mine` has every database of `theirs` at an equal or higher
 * TXID; otherwise the first gap (by database name). A database we lack
 * entirely counts as TXID 0. Equal TXIDs with other checksums are not a
 * gap here: neither side is more current, and the stream's snapshot rules
 * (with quarantine) settle them.
 */
export function behindBy(mine: PositionRecord, theirs: PositionRecord): Gap | null {
  for (const db of Object.keys(theirs.databases).sort()) {
    const t = BigInt('0x' + theirs.databases[db]!.txid);
    const m = mine.databases[db];
    const local = m === undefined ? 0n : BigInt('0x' + m.txid);
    if (local < t) return { db, local, theirs: t };
  }
  return null;
}
