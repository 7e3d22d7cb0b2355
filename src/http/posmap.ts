/**
 * The position map: the request body of POST /stream, in which a replica
 * tells the primary where each of its databases stands (ref §9.3).
 *
 *   u32 count
 *   count × { u32 nameLen, name bytes, u64 TXID, u64 post-apply checksum }
 *
 * All integers big-endian; entries sorted by name in byte order.
 */
import { UnexpectedEOFError, WireEOFError } from './errors.js';

/** A database position; the same shape as src/ltx's `Pos`, kept local so this layer stands alone. */
export interface Pos {
  readonly txid: bigint;
  readonly postApplyChecksum: bigint;
}

export type PosMap = ReadonlyMap<string, Pos>;

const U64_MAX = 0xffff_ffff_ffff_ffffn;

/** Encodes `map` with its entries sorted by the bytes of their names, as Go's sort.Strings orders them. */
export function encodePosMap(map: PosMap): Buffer {
  const entries = [...map].map(([name, pos]) => ({ name: Buffer.from(name, 'utf8'), pos }));
  entries.sort((a, b) => Buffer.compare(a.name, b.name));
  let size = 4;
  for (const e of entries) size += 4 + e.name.length + 16;
  const out = Buffer.alloc(size);
  let off = out.writeUInt32BE(entries.length, 0);
  for (const { name, pos } of entries) {
    off = out.writeUInt32BE(name.length, off);
    off += name.copy(out, off);
    off = out.writeBigUInt64BE(pos.txid & U64_MAX, off);
    off = out.writeBigUInt64BE(pos.postApplyChecksum & U64_MAX, off);
  }
  return out;
}

/**
 * Decodes a complete position map. Like Go's reader, a field that finds no
 * bytes left fails with `EOF` and one that finds some but not enough fails
 * with `unexpected EOF`; the server sends these messages as its 400 body.
 * Bytes after the last entry are ignored, as Go never reads them.
 *
 * Allocation is bounded by the input: the count is never used to size
 * anything, and a name is only sliced once its bytes are known to be present.
 * A later entry with the same name replaces an earlier one (Go map semantics).
 */
export function decodePosMap(buf: Uint8Array): Map<string, Pos> {
  const input = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  let off = 0;
  const need = (n: number): void => {
    const left = input.length - off;
    if (left >= n) return;
    throw left === 0 ? new WireEOFError() : new UnexpectedEOFError();
  };

  need(4);
  const count = input.readUInt32BE(off);
  off += 4;
  const map = new Map<string, Pos>();
  for (let i = 0; i < count; i++) {
    need(4);
    const nameLen = input.readUInt32BE(off);
    off += 4;
    if (nameLen > 0) need(nameLen);
    const name = input.toString('utf8', off, off + nameLen);
    off += nameLen;
    need(8);
    const txid = input.readBigUInt64BE(off);
    off += 8;
    need(8);
    const postApplyChecksum = input.readBigUInt64BE(off);
    off += 8;
    map.set(name, { txid, postApplyChecksum });
  }
  return map;
}
