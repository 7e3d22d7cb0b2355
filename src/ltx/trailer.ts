/**
 * The 16-byte LTX trailer (formats.md A.5): never compressed, always last.
 */
import { LTXDecodeError, LTXValidationError } from './errors.js';
import type { Header } from './header.js';
import { TRAILER_SIZE } from './header.js';
import type { Pos } from './pos.js';
import type { Checksum } from './types.js';

export interface Trailer {
  /** Database checksum after applying the file. */
  postApplyChecksum: Checksum;
  /** F | CRC64 of the uncompressed stream: header ‖ page block ‖ trailer[0:8]. */
  fileChecksum: Checksum;
}

const FLAG = 1n << 63n;

export function marshalTrailer(t: Trailer, out: Uint8Array = new Uint8Array(TRAILER_SIZE), offset = 0): Uint8Array {
  const v = new DataView(out.buffer, out.byteOffset + offset, TRAILER_SIZE);
  v.setBigUint64(0, BigInt.asUintN(64, t.postApplyChecksum));
  v.setBigUint64(8, BigInt.asUintN(64, t.fileChecksum));
  return out;
}

export function unmarshalTrailer(buf: Uint8Array): Trailer {
  if (buf.length < TRAILER_SIZE) throw new LTXDecodeError('short-buffer', 'short buffer');
  const v = new DataView(buf.buffer, buf.byteOffset, TRAILER_SIZE);
  return { postApplyChecksum: v.getBigUint64(0), fileChecksum: v.getBigUint64(8) };
}

/** Trailer.Validate (run by the encoder only): both checksums present with bit 63 set. */
export function validateTrailer(t: Trailer): void {
  if (t.postApplyChecksum === 0n) throw new LTXValidationError('post-apply-checksum-required', 'post-apply checksum required');
  if ((t.postApplyChecksum & FLAG) === 0n) {
    throw new LTXValidationError('invalid-post-apply-checksum-format', 'invalid post-apply checksum format');
  }
  if (t.fileChecksum === 0n) throw new LTXValidationError('file-checksum-required', 'file checksum required');
  if ((t.fileChecksum & FLAG) === 0n) throw new LTXValidationError('invalid-file-checksum-format', 'invalid file checksum format');
}

/** Position after applying: (MaxTXID, PostApplyChecksum). */
export function postApplyPos(h: Header, t: Trailer): Pos {
  return { txid: h.maxTXID, postApplyChecksum: t.postApplyChecksum };
}
