/**
 * Streaming LTX encoder (formats.md A.8), push style: bytes go to a
 * synchronous ByteSink as they are produced. It holds at most one 64 KiB
 * output buffer (plus, with LZ4, one 64 KiB block and its compressed copy);
 * page data is never retained beyond `encodePage`.
 */
import { ChecksumFlag, lockPgno } from './checksum.js';
import { Crc64 } from './crc64.js';
import { LTXEncodeError, LTXValidationError } from './errors.js';
import {
  HEADER_SIZE,
  type Header,
  HeaderFlagCompressLZ4,
  PAGE_HEADER_SIZE,
  TRAILER_SIZE,
  isSnapshot,
  marshalHeader,
  validateHeader,
} from './header.js';
import { LZ4FrameEncoder } from './lz4frame.js';
import { pageOrderError } from './page-order.js';
import type { Pos } from './pos.js';
import { BufferedSink, type ByteSink } from './sink.js';
import { type Trailer, marshalTrailer, postApplyPos, validateTrailer } from './trailer.js';

const enum State {
  Header,
  Page,
  Closed,
}

export class LTXEncoder {
  private state = State.Header;
  private readonly out: BufferedSink;
  private lz4: LZ4FrameEncoder | null = null;
  private readonly crc = new Crc64();
  private hdr: Header | null = null;
  private postApply = 0n;
  private fileChecksum = 0n;
  private prevPgno = 0;
  private lock = 0;
  private readonly scratch = new Uint8Array(HEADER_SIZE);
  private bytes = 0;

  constructor(sink: ByteSink) {
    this.out = new BufferedSink(sink);
  }

  /** Validates and writes the header (raw, never compressed). */
  encodeHeader(h: Header): void {
    if (this.state === State.Closed) throw closedError();
    if (this.state !== State.Header) {
      throw new LTXEncodeError('header-already-encoded', 'cannot encode header frame, expected page');
    }
    validateHeader(h);
    this.hdr = { ...h };
    this.lock = lockPgno(h.pageSize);
    const buf = marshalHeader(h, this.scratch);
    this.out.write(buf);
    this.crc.update(buf);
    this.bytes += HEADER_SIZE;
    if (h.flags & HeaderFlagCompressLZ4) this.lz4 = new LZ4FrameEncoder(this.out);
    this.state = State.Page;
  }

  /** Appends one page, enforcing ltx's page-order rules (A.3) in Go's order. */
  encodePage(pgno: number, data: Uint8Array): void {
    if (this.state === State.Closed) throw closedError();
    if (this.state !== State.Page) throw new LTXEncodeError('expected-header', 'cannot encode page header, expected header');
    const h = this.hdr as Header;
    if (pgno > h.commit) {
      throw new LTXEncodeError('page-out-of-bounds', `page number ${pgno} out-of-bounds for commit size ${h.commit}`);
    }
    if (pgno === 0) throw new LTXEncodeError('page-number-required', 'page number required');
    if (data.length !== h.pageSize) {
      throw new LTXEncodeError('invalid-page-buffer-size', `invalid page buffer size: ${data.length}, expecting ${h.pageSize}`);
    }
    if (pgno === this.lock) throw new LTXEncodeError('lock-page', `cannot encode lock page: pgno=${pgno}`);
    const err = pageOrderError(isSnapshot(h), this.prevPgno, pgno, this.lock);
    if (err !== null) throw new LTXEncodeError(err.rule, err.message);

    const pgnoBytes = this.scratch;
    pgnoBytes[0] = pgno >>> 24;
    pgnoBytes[1] = pgno >>> 16;
    pgnoBytes[2] = pgno >>> 8;
    pgnoBytes[3] = pgno;
    this.writeBody(pgnoBytes.subarray(0, PAGE_HEADER_SIZE));
    this.writeBody(data);
    this.prevPgno = pgno;
  }

  setPostApplyChecksum(c: bigint): void {
    this.postApply = c;
  }

  /**
   * Writes the end marker, closes the LZ4 frame, computes the file checksum
   * and writes the trailer. A second call is a no-op.
   */
  close(): void {
    if (this.state === State.Closed) return;
    if (this.state !== State.Page) throw new LTXEncodeError('expected-header', 'cannot close, expected header');
    const h = this.hdr as Header;

    this.writeBody(new Uint8Array(PAGE_HEADER_SIZE));
    if (this.lz4 !== null) this.lz4.close();

    const trailerBytes = marshalTrailer({ postApplyChecksum: this.postApply, fileChecksum: 0n });
    this.crc.update(trailerBytes, 0, 8);
    this.fileChecksum = ChecksumFlag | this.crc.digest();
    const trailer: Trailer = { postApplyChecksum: this.postApply, fileChecksum: this.fileChecksum };
    try {
      validateTrailer(trailer);
    } catch (e) {
      throw e instanceof LTXValidationError ? new LTXEncodeError(e.rule, e.message, { cause: e }) : e;
    }
    if (h.commit === 0 && this.postApply !== ChecksumFlag) {
      throw new LTXEncodeError('deleted-database-post-apply-checksum', 'post-apply checksum must be empty for zero-length database');
    }
    marshalTrailer(trailer, trailerBytes);
    this.out.write(trailerBytes);
    this.out.release();
    this.bytes += TRAILER_SIZE;
    this.state = State.Closed;
  }

  get header(): Header {
    if (this.hdr === null) throw new LTXEncodeError('expected-header', 'header not encoded yet');
    return this.hdr;
  }

  /** The trailer; `fileChecksum` is 0 until `close`. */
  get trailer(): Trailer {
    return { postApplyChecksum: this.postApply, fileChecksum: this.fileChecksum };
  }

  postApplyPos(): Pos {
    return postApplyPos(this.header, this.trailer);
  }

  /** Logical (uncompressed) bytes encoded so far. */
  get n(): number {
    return this.bytes;
  }

  private writeBody(data: Uint8Array): void {
    this.crc.update(data);
    this.bytes += data.length;
    if (this.lz4 !== null) this.lz4.write(data);
    else this.out.write(data);
  }
}

function closedError(): LTXEncodeError {
  return new LTXEncodeError('encoder-closed', 'ltx encoder closed');
}
