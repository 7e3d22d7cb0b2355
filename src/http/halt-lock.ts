/**
 * The HALT lock a primary grants a replica (ref §8.2), as LiteFS's
 * `HaltLock` JSON: `{"id":<int64>,"pos":{"TXID":"…","PostApplyChecksum":"…"},"expires":"<RFC 3339>"}`.
 * The id is a 63-bit number: written and read as exact digits (a JavaScript
 * number would round it).
 */
import { type Pos, posFromJSON, posToJSON } from '../ltx/index.js';
import { goJSON, goTimestamp } from './gotext.js';

export interface HaltLock {
  readonly id: bigint;
  /** The primary's position when the lock was granted: the replica catches up to it before writing. */
  readonly pos: Pos;
  /** When the primary lets the lock go unless renewed (ms since the epoch); null if it did not say. */
  readonly expires: number | null;
}

export function formatHaltLock(lock: HaltLock): string {
  const expires = lock.expires === null ? '' : `,"expires":${goJSON(goTimestamp(lock.expires))}`;
  return `{"id":${lock.id.toString()},"pos":${goJSON(posToJSON(lock.pos))}${expires}}`;
}

export function parseHaltLock(text: string): HaltLock {
  const value = JSON.parse(text) as unknown;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('halt lock: not a JSON object');
  const o = value as Record<string, unknown>;
  const digits = /"id"\s*:\s*(-?\d+)/.exec(text)?.[1];
  if (digits === undefined) throw new Error('halt lock: no id');
  const expires = typeof o.expires === 'string' ? Date.parse(o.expires) : NaN;
  return { id: BigInt(digits), pos: posFromJSON(o.pos ?? null), expires: Number.isNaN(expires) ? null : expires };
}
