/**
 * Stream frames: the response body of POST /stream (ref §9.4). Every frame
 * starts with a big-endian `u32 type`; strings are `u32 length` + bytes.
 *
 * | type | frame     | after the type                                        |
 * |------|-----------|-------------------------------------------------------|
 * | 1    | LTX       | i64 size (always 0), u32 nameLen, name, chunked body  |
 * | 2    | Ready     | —                                                     |
 * | 3    | End       | —                                                     |
 * | 4    | DropDB    | u32 nameLen, name                                     |
 * | 5    | Handoff   | u32 len, lease id                                     |
 * | 6    | HWM       | u64 txid, u32 nameLen, name                           |
 * | 7    | Heartbeat | i64 ms since the Unix epoch                           |
 * | 8    | SnapshotReason | u32 nameLen, name, u32 len, reason (ours, below) |
 *
 * SnapshotReason is a litefs-ts addition: it precedes an LTX frame that
 * carries a snapshot and says why the primary sends one, so a replica can
 * tell "merely behind retention" from "diverged" (ARCHITECTURE §3.1). Go
 * readers fail on unknown frame types, so a primary sends it only to a
 * replica whose /stream request carries `Litefs-Features: snapshot-reason`.
 */
import { ChunkDecoder, CHUNK_TERMINATOR, encodeChunks } from './chunk.js';
import { UnexpectedEOFError, UnknownFrameTypeError, WireLimitError } from './errors.js';

export const FrameType = {
  LTX: 1,
  Ready: 2,
  End: 3,
  DropDB: 4,
  Handoff: 5,
  HWM: 6,
  Heartbeat: 7,
  SnapshotReason: 8,
} as const;

/** Request header a replica sends to receive SnapshotReason frames (comma-separated feature names). */
export const FEATURES_HEADER = 'litefs-features';
export const SNAPSHOT_REASON_FEATURE = 'snapshot-reason';

/**
 * Why a primary sends a snapshot (ref §9.5, §9.7):
 * - `empty`: the replica has no position (or TXID 1 is next);
 * - `behind`: the next LTX file is gone (retention): the replica's data is
 *   an older state of this history;
 * - `ahead`: the replica's TXID is beyond the primary's;
 * - `diverged`: same TXID with another checksum, or the next file's
 *   pre-apply checksum differs from the replica's.
 */
export type SnapshotReason = 'empty' | 'behind' | 'ahead' | 'diverged';
export const SNAPSHOT_REASONS: readonly SnapshotReason[] = ['empty', 'behind', 'ahead', 'diverged'];
/** Longest reason text a decoder accepts. */
export const MAX_REASON_LENGTH = 256;

/**
 * Longest database name a decoder accepts. Database names are file names in
 * the mount (at most 255 bytes on Linux); 4096 leaves room without letting a
 * corrupt length field make the decoder buffer megabytes.
 */
export const MAX_NAME_LENGTH = 4096;
/** Longest handoff lease id a decoder accepts (Consul session ids are 36 bytes). */
export const MAX_LEASE_ID_LENGTH = 4096;

/** An LTX frame's header; its body follows as a chunked stream. */
export interface LTXFrameHeader {
  readonly type: 'ltx';
  readonly name: string;
  /** Written as 0 by Go LiteFS and ignored by its readers. */
  readonly size: bigint;
}

export type StreamFrame =
  | LTXFrameHeader
  | { readonly type: 'ready' }
  | { readonly type: 'end' }
  | { readonly type: 'dropDB'; readonly name: string }
  | { readonly type: 'handoff'; readonly leaseID: string }
  | { readonly type: 'hwm'; readonly txid: bigint; readonly name: string }
  | { readonly type: 'heartbeat'; readonly timestamp: bigint }
  /** `reason` is kept as sent: a newer primary may send reasons this build does not know. */
  | { readonly type: 'snapshotReason'; readonly name: string; readonly reason: string };

const U64_MASK = 0xffff_ffff_ffff_ffffn;

function stringField(s: string): Buffer {
  const bytes = Buffer.from(s, 'utf8');
  const out = Buffer.allocUnsafe(4 + bytes.length);
  out.writeUInt32BE(bytes.length, 0);
  bytes.copy(out, 4);
  return out;
}

function u32(v: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(v, 0);
  return b;
}

function i64(v: bigint): Buffer {
  const b = Buffer.allocUnsafe(8);
  b.writeBigInt64BE(BigInt.asIntN(64, v), 0);
  return b;
}

function u64(v: bigint): Buffer {
  const b = Buffer.allocUnsafe(8);
  b.writeBigUInt64BE(v & U64_MASK, 0);
  return b;
}

/**
 * Encodes a frame. For an LTX frame this is only the header (type, size,
 * name): the caller writes the body with `encodeChunks` and then
 * `CHUNK_TERMINATOR`, or uses `encodeLTXFrame`.
 */
export function encodeFrame(frame: StreamFrame): Buffer {
  switch (frame.type) {
    case 'ltx':
      return Buffer.concat([u32(FrameType.LTX), i64(frame.size), stringField(frame.name)]);
    case 'ready':
      return u32(FrameType.Ready);
    case 'end':
      return u32(FrameType.End);
    case 'dropDB':
      return Buffer.concat([u32(FrameType.DropDB), stringField(frame.name)]);
    case 'handoff':
      return Buffer.concat([u32(FrameType.Handoff), stringField(frame.leaseID)]);
    case 'hwm':
      return Buffer.concat([u32(FrameType.HWM), u64(frame.txid), stringField(frame.name)]);
    case 'heartbeat':
      return Buffer.concat([u32(FrameType.Heartbeat), i64(frame.timestamp)]);
    case 'snapshotReason':
      return Buffer.concat([u32(FrameType.SnapshotReason), stringField(frame.name), stringField(frame.reason)]);
  }
}

/** A whole LTX frame: header, each write framed as chunks, terminator. */
export function encodeLTXFrame(name: string, writes: Iterable<Uint8Array>): Buffer {
  const parts = [encodeFrame({ type: 'ltx', name, size: 0n })];
  for (const w of writes) parts.push(...encodeChunks(w));
  parts.push(CHUNK_TERMINATOR);
  return Buffer.concat(parts);
}

/**
 * What the push decoder reports, in stream order. An LTX frame is reported
 * as `frame` (its header), then `ltx-chunk`/`ltx-data` for its body, then
 * `ltx-end` once the chunk terminator has been consumed.
 */
export type FrameEvent =
  | { readonly kind: 'frame'; readonly frame: StreamFrame }
  | { readonly kind: 'ltx-chunk'; readonly length: number }
  | { readonly kind: 'ltx-data'; readonly data: Buffer }
  | { readonly kind: 'ltx-end' };

/**
 * Parses a frame header at the start of `buf`. Returns the frame and the
 * bytes it took, or undefined if more bytes are needed. Length fields are
 * checked against their caps as soon as they are read, so a caller that
 * buffers an incomplete header never holds more than 4 + 8 + 4 + 4096 bytes.
 */
function parseFrameHeader(buf: Buffer): { frame: StreamFrame; length: number } | undefined {
  if (buf.length < 4) return undefined;
  const type = buf.readUInt32BE(0);
  // A string field at `off`: returns [value, end] or undefined if incomplete.
  const str = (off: number, field: string, cap: number): [string, number] | undefined => {
    if (buf.length < off + 4) return undefined;
    const n = buf.readUInt32BE(off);
    if (n > cap) throw new WireLimitError(field, n, cap);
    if (buf.length < off + 4 + n) return undefined;
    return [buf.toString('utf8', off + 4, off + 4 + n), off + 4 + n];
  };
  switch (type) {
    case FrameType.LTX: {
      if (buf.length < 12) return undefined;
      const size = buf.readBigInt64BE(4);
      const s = str(12, 'LTX frame name', MAX_NAME_LENGTH);
      return s && { frame: { type: 'ltx', name: s[0], size }, length: s[1] };
    }
    case FrameType.Ready:
      return { frame: { type: 'ready' }, length: 4 };
    case FrameType.End:
      return { frame: { type: 'end' }, length: 4 };
    case FrameType.DropDB: {
      const s = str(4, 'DropDB frame name', MAX_NAME_LENGTH);
      return s && { frame: { type: 'dropDB', name: s[0] }, length: s[1] };
    }
    case FrameType.Handoff: {
      const s = str(4, 'Handoff frame lease id', MAX_LEASE_ID_LENGTH);
      return s && { frame: { type: 'handoff', leaseID: s[0] }, length: s[1] };
    }
    case FrameType.HWM: {
      if (buf.length < 12) return undefined;
      const txid = buf.readBigUInt64BE(4);
      const s = str(12, 'HWM frame name', MAX_NAME_LENGTH);
      return s && { frame: { type: 'hwm', txid, name: s[0] }, length: s[1] };
    }
    case FrameType.Heartbeat:
      if (buf.length < 12) return undefined;
      return { frame: { type: 'heartbeat', timestamp: buf.readBigInt64BE(4) }, length: 12 };
    case FrameType.SnapshotReason: {
      const n = str(4, 'SnapshotReason frame name', MAX_NAME_LENGTH);
      const r = n && str(n[1], 'SnapshotReason frame reason', MAX_REASON_LENGTH);
      return r && n && { frame: { type: 'snapshotReason', name: n[0], reason: r[0] }, length: r[1] };
    }
    default:
      throw new UnknownFrameTypeError(type);
  }
}

/** Upper bound on a frame header: type + i64/u64 + u32 length + longest string. */
const MAX_FRAME_HEADER = Math.max(4 + 8 + 4 + Math.max(MAX_NAME_LENGTH, MAX_LEASE_ID_LENGTH), 4 + 4 + MAX_NAME_LENGTH + 4 + MAX_REASON_LENGTH);

/**
 * Synchronous push decoder for a stream of frames. Feed it bytes as they
 * arrive with `push`; call `end` at EOF, which throws `UnexpectedEOFError`
 * if the stream stopped inside a frame. After a thrown error the decoder is
 * unusable (the stream is out of sync).
 */
export class FrameDecoder {
  /** Bytes of a frame header that has not fully arrived (bounded by MAX_FRAME_HEADER). */
  private partial: Buffer = Buffer.alloc(0);
  private body: ChunkDecoder | undefined;

  push(data: Buffer, emit: (event: FrameEvent) => void): void {
    let rest = data;
    while (rest.length > 0) {
      if (this.body) {
        const used = this.body.push(
          rest,
          (payload) => emit({ kind: 'ltx-data', data: payload }),
          (length) => emit({ kind: 'ltx-chunk', length }),
        );
        rest = rest.subarray(used);
        if (this.body.done) {
          this.body = undefined;
          emit({ kind: 'ltx-end' });
        }
        continue;
      }
      // Parse straight from `rest` when no header is pending (no copy);
      // otherwise join the pending bytes with at most one header's worth.
      const held = this.partial.length;
      const view = held === 0 ? rest : Buffer.concat([this.partial, rest.subarray(0, MAX_FRAME_HEADER)]);
      const parsed = parseFrameHeader(view);
      if (!parsed) {
        this.partial = Buffer.from(view.subarray(0, Math.min(view.length, MAX_FRAME_HEADER)));
        const took = this.partial.length - held;
        rest = rest.subarray(took);
        continue;
      }
      this.partial = Buffer.alloc(0);
      rest = rest.subarray(parsed.length - held);
      emit({ kind: 'frame', frame: parsed.frame });
      if (parsed.frame.type === 'ltx') this.body = new ChunkDecoder();
    }
  }

  /** True when the bytes so far end exactly at a frame boundary. */
  get atBoundary(): boolean {
    return this.partial.length === 0 && this.body === undefined;
  }

  /** Declares EOF: a clean end at a frame boundary, otherwise `UnexpectedEOFError`. */
  end(): void {
    if (!this.atBoundary) throw new UnexpectedEOFError();
  }
}

/** A frame decoded from a complete byte string; LTX frames carry their whole body. */
export type DecodedFrame =
  | Exclude<StreamFrame, LTXFrameHeader>
  | (LTXFrameHeader & { readonly payload: Buffer; readonly chunks: readonly number[] });

/**
 * Decodes every frame of a complete byte string (a recorded stream body, a
 * fuzz input). Throws the decoder's typed errors; memory is bounded by the
 * input size.
 */
export function decodeFrames(bytes: Uint8Array): DecodedFrame[] {
  const frames: DecodedFrame[] = [];
  let ltx: { header: LTXFrameHeader; parts: Buffer[]; chunks: number[] } | undefined;
  const decoder = new FrameDecoder();
  decoder.push(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), (ev) => {
    switch (ev.kind) {
      case 'frame':
        if (ev.frame.type === 'ltx') ltx = { header: ev.frame, parts: [], chunks: [] };
        else frames.push(ev.frame);
        break;
      case 'ltx-chunk':
        ltx!.chunks.push(ev.length);
        break;
      case 'ltx-data':
        ltx!.parts.push(ev.data);
        break;
      case 'ltx-end':
        frames.push({ ...ltx!.header, payload: Buffer.concat(ltx!.parts), chunks: ltx!.chunks });
        ltx = undefined;
        break;
    }
  });
  decoder.end();
  return frames;
}
