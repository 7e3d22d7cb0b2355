/**
 * Pos: a database's replication position, (TXID, post-apply checksum)
 * (formats.md A.7). The zero Pos means an empty or new database.
 */
import { LTXError, LTXParseError, goQuote } from './errors.js';
import {
  type Checksum,
  type TXID,
  checksumFromJSON,
  formatHex16,
  parseChecksum,
  parseTXID,
  txidFromJSON,
} from './types.js';

export interface Pos {
  readonly txid: TXID;
  readonly postApplyChecksum: Checksum;
}

/** JSON shape of a Pos, as Go encodes ltx.Pos (no json tags). */
export interface PosJSON {
  TXID: string;
  PostApplyChecksum: string;
}

export const ZERO_POS: Pos = Object.freeze({ txid: 0n, postApplyChecksum: 0n });

export function isZeroPos(p: Pos): boolean {
  return p.txid === 0n && p.postApplyChecksum === 0n;
}

export function posEqual(a: Pos, b: Pos): boolean {
  return a.txid === b.txid && a.postApplyChecksum === b.postApplyChecksum;
}

/** `%016x/%016x`, 33 characters. */
export function formatPos(p: Pos): string {
  return `${formatHex16(p.txid)}/${formatHex16(p.postApplyChecksum)}`;
}

/** Parses the 33-character form; like Go, the separator is not checked. */
export function parsePos(s: string): Pos {
  if (s.length !== 33) {
    throw new LTXParseError('invalid-position-length', `invalid formatted position length: ${goQuote(s)}`);
  }
  return { txid: parseTXID(s.slice(0, 16)), postApplyChecksum: parseChecksum(s.slice(17)) };
}

export function posToJSON(p: Pos): PosJSON {
  return { TXID: formatHex16(p.txid), PostApplyChecksum: formatHex16(p.postApplyChecksum) };
}

/** Reads a Pos from a parsed JSON value; missing or null fields are 0. */
export function posFromJSON(v: unknown): Pos {
  if (v === null) return ZERO_POS;
  if (typeof v !== 'object' || Array.isArray(v)) {
    throw new LTXParseError('invalid-position-json', 'cannot unmarshal position: not an object');
  }
  const o = v as Record<string, unknown>;
  return { txid: txidFromJSON(o.TXID ?? null), postApplyChecksum: checksumFromJSON(o.PostApplyChecksum ?? null) };
}

/**
 * Returned when a remote position is not contiguous with the local one; it
 * carries the position the other side has, so the caller can resume there.
 */
export class PosMismatchError extends LTXError {
  readonly pos: Pos;

  constructor(pos: Pos) {
    super('pos-mismatch', `ltx position mismatch (${formatPos(pos)})`);
    this.pos = pos;
  }

  /** `{"pos":{"TXID":"…","PostApplyChecksum":"…"}}` */
  toJSON(): { pos: PosJSON } {
    return { pos: posToJSON(this.pos) };
  }

  static fromJSON(v: unknown): PosMismatchError {
    const o = (typeof v === 'object' && v !== null ? v : {}) as Record<string, unknown>;
    return new PosMismatchError(posFromJSON(o.pos ?? null));
  }
}
