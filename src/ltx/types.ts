/**
 * TXIDs, checksums, file names and timestamps in their text and JSON forms
 * (formats.md A.7). 64-bit values are bigints throughout the codec so every
 * on-disk value round-trips exactly.
 */
import { LTXParseError, goQuote } from './errors.js';

/** A transaction ID (u64). */
export type TXID = bigint;

/** A 64-bit LTX checksum (u64; valid ones have bit 63 set). */
export type Checksum = bigint;

const U64_MAX = (1n << 64n) - 1n;
const HEX16 = /^[0-9a-fA-F]{16}$/;

/** 16 lower-case hex digits, zero padded (Go's %016x). */
export function formatHex16(v: bigint): string {
  return (v & U64_MAX).toString(16).padStart(16, '0');
}

function parseHex16(s: string, what: 'transaction id' | 'checksum'): bigint {
  if (s.length !== 16) {
    throw new LTXParseError(`invalid-${what.replace(' ', '-')}-length`, `invalid formatted ${what} length: ${goQuote(s)}`);
  }
  if (!HEX16.test(s)) {
    throw new LTXParseError(`invalid-${what.replace(' ', '-')}-format`, `invalid ${what} format: ${goQuote(s)}`);
  }
  return BigInt('0x' + s);
}

export function formatTXID(txid: TXID): string {
  return formatHex16(txid);
}

/** Parses exactly 16 hex digits (upper case accepted). */
export function parseTXID(s: string): TXID {
  return parseHex16(s, 'transaction id');
}

export function formatChecksum(c: Checksum): string {
  return formatHex16(c);
}

/** Parses exactly 16 hex digits (upper case accepted). */
export function parseChecksum(s: string): Checksum {
  return parseHex16(s, 'checksum');
}

/** JSON value of a TXID: its quoted 16-hex form. */
export function txidToJSON(txid: TXID): string {
  return formatTXID(txid);
}

/** Reads a TXID from a parsed JSON value; null means 0. */
export function txidFromJSON(v: unknown): TXID {
  if (v === null) return 0n;
  if (typeof v !== 'string') throw new LTXParseError('invalid-transaction-id-json', 'cannot unmarshal transaction id: not a string');
  return parseTXID(v);
}

/** JSON value of a checksum: its quoted 16-hex form. */
export function checksumToJSON(c: Checksum): string {
  return formatChecksum(c);
}

/** Reads a checksum from a parsed JSON value; null means 0. */
export function checksumFromJSON(v: unknown): Checksum {
  if (v === null) return 0n;
  if (typeof v !== 'string') throw new LTXParseError('invalid-checksum-json', 'cannot unmarshal checksum: not a string');
  return parseChecksum(v);
}

const FILENAME = /^([0-9a-f]{16})-([0-9a-f]{16})\.ltx$/;

/** `%016x-%016x.ltx`, e.g. 0000000000000001-00000000000003e8.ltx. */
export function formatFilename(minTXID: TXID, maxTXID: TXID): string {
  return `${formatHex16(minTXID)}-${formatHex16(maxTXID)}.ltx`;
}

/** Parses an LTX file name; only lower-case hex is accepted, as in Go. */
export function parseFilename(name: string): { minTXID: TXID; maxTXID: TXID } {
  const m = FILENAME.exec(name);
  if (m === null) throw new LTXParseError('invalid-filename', `invalid ltx filename: ${name}`);
  return { minTXID: BigInt('0x' + m[1]), maxTXID: BigInt('0x' + m[2]) };
}

/** Formats ms since the epoch as `2006-01-02T15:04:05.000Z07:00` in UTC. */
export function formatTimestamp(ms: bigint | number): string {
  const d = new Date(Number(ms));
  if (Number.isNaN(d.getTime())) throw new LTXParseError('invalid-timestamp', `timestamp out of range: ${ms}`);
  return d.toISOString();
}

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/;

/**
 * Parses an RFC 3339 timestamp (the display format is one) to ms since the
 * epoch, truncating sub-millisecond digits as Go's ParseTimestamp does.
 */
export function parseTimestamp(s: string): bigint {
  const m = RFC3339.exec(s);
  if (m === null) throw new LTXParseError('invalid-timestamp', `invalid timestamp: ${goQuote(s)}`);
  const [, y, mo, d, h, mi, sec, frac, zone] = m;
  let ms = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(sec));
  if (Number(y) < 100) {
    // Date.UTC maps two-digit years to 19xx.
    const dt = new Date(ms);
    dt.setUTCFullYear(Number(y));
    ms = dt.getTime();
  }
  const fracMs = frac === undefined ? 0 : Number((frac + '00').slice(0, 3));
  let offsetMin = 0;
  if (zone !== 'Z') {
    const sign = zone[0] === '-' ? -1 : 1;
    offsetMin = sign * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4, 6)));
  }
  return BigInt(ms + fracMs - offsetMin * 60_000);
}
