/**
 * The /events stream (ref §7.6): one JSON object per line, in Go's field
 * order `type`, `db` (left out when empty), `data`.
 */
import { goJSON, goTimestamp } from './gotext.js';

export interface PrimaryEventData {
  readonly isPrimary: boolean;
  /** The known primary's hostname; left out of the JSON when empty. */
  readonly hostname?: string;
  /**
   * Why the role changed (a litefs-ts addition on `primaryChange`, e.g.
   * `acquired`, `lease lost: ...`, `handed off to ...`); left out when empty,
   * so `init` events and Go consumers see LiteFS's layout.
   */
  readonly reason?: string;
}

export interface TxEventData {
  readonly txID: bigint;
  readonly postApplyChecksum: bigint;
  readonly pageSize: number;
  readonly commit: number;
  /** LTX header timestamp, ms since the Unix epoch. */
  readonly timestamp: number;
}

export type LiteFSEvent =
  | { readonly type: 'init' | 'primaryChange'; readonly db?: string; readonly data: PrimaryEventData }
  | { readonly type: 'tx'; readonly db: string; readonly data: TxEventData };

const hex16 = (v: bigint): string => v.toString(16).padStart(16, '0');

/** One NDJSON line (with its `\n`), byte-identical to Go's json.Encoder output. */
export function encodeEvent(ev: LiteFSEvent): string {
  let data: Record<string, unknown>;
  if (ev.type === 'tx') {
    const d = ev.data;
    data = {
      txID: hex16(d.txID),
      postApplyChecksum: hex16(d.postApplyChecksum),
      pageSize: d.pageSize,
      commit: d.commit,
      timestamp: goTimestamp(d.timestamp),
    };
  } else {
    data = { isPrimary: ev.data.isPrimary };
    if (ev.data.hostname) data.hostname = ev.data.hostname;
    if (ev.data.reason) data.reason = ev.data.reason;
  }
  const obj: Record<string, unknown> = { type: ev.type };
  if (ev.db) obj.db = ev.db;
  obj.data = data;
  return goJSON(obj) + '\n';
}
