/**
 * Streaming LTX decoder (formats.md A.9), push style: feed bytes with `push`,
 * receive the header, each page and the trailer through callbacks, then call
 * `end`. Memory is one page frame plus, for LZ4 bodies, the frame decoder's
 * block buffers (bounded by the frame's declared block size, <= 4 MiB).
 *
 * By default it accepts exactly what the Go v0.3.13 decoder accepts: no page
 * order, bounds or lock-page checks; page number 0 ends the page block; with
 * LZ4 the frame must end right after the end marker; the file checksum is
 * verified when the trailer arrives, and for snapshots the post-apply
 * checksum is recomputed from the pages (lock page skipped). `strict: true`
 * adds the checks Go lacks: the encoder's page-order rules, pgno <= Commit,
 * no lock page, a snapshot ends at Commit, and a well-formed trailer.
 *
 * Pages are delivered before the file checksum has been checked: treat them
 * as provisional until `end()` (or the trailer callback) succeeds.
 */
import { CHECKSUM_FLAG_HI, ChecksumFlag, DatabaseChecksum, checksumPageInto, joinChecksum, lockPgno } from './checksum.js';
import { Crc64 } from './crc64.js';
import { LTXDecodeError, LTXError } from './errors.js';
import {
  HEADER_SIZE,
  type Header,
  HeaderFlagCompressLZ4,
  PAGE_HEADER_SIZE,
  TRAILER_SIZE,
  isSnapshot,
  unmarshalHeader,
  validateHeader,
} from './header.js';
import { LZ4FrameDecoder } from './lz4frame.js';
import { pageOrderError } from './page-order.js';
import { type Trailer, unmarshalTrailer } from './trailer.js';
import { formatHex16 } from './types.js';

export interface DecodeOptions {
  /** Also enforce the encoder's page rules and trailer format (see above). */
  strict?: boolean;
  /** Compute each page's checksum (available as `pageChecksum` in onPage). */
  pageChecksums?: boolean;
}

export interface DecodeHandlers {
  onHeader?(header: Header): void;
  /** `data` is a view valid only until the next call into the decoder. */
  onPage?(pgno: number, data: Uint8Array): void;
  onTrailer?(trailer: Trailer): void;
}

export interface DecodeSummary {
  header: Header;
  trailer: Trailer;
  /** Number of page frames (end marker excluded). */
  pageCount: number;
  /** Logical (uncompressed) bytes read, header and trailer included. */
  n: number;
}

const enum Stage {
  Header,
  Body,
  Trailer,
  Done,
}

const enum PageStage {
  Pgno,
  Data,
  Ended,
}

export class LTXDecoder {
  private stage = Stage.Header;
  private failure: unknown = null;
  private readonly headerBuf = new Uint8Array(HEADER_SIZE);
  private readonly trailerBuf = new Uint8Array(TRAILER_SIZE);
  private fill = 0;
  private hdr: Header | null = null;
  private trl: Trailer | null = null;
  private lz4: LZ4FrameDecoder | null = null;
  private readonly crc = new Crc64();
  private dbChecksum: DatabaseChecksum | null = null;
  private readonly pageChecksumHalves = new Uint32Array(2);

  /** Page frame under assembly: 4-byte pgno then the page (<= 65540 bytes, from a validated page size). */
  private frame = new Uint8Array(PAGE_HEADER_SIZE);
  private pageStage = PageStage.Pgno;
  private frameFill = 0;
  private pgno = 0;
  private prevPgno = 0;
  private lock = 0;
  private snapshot = false;
  private pages = 0;
  private bytes = 0;
  /** Set by `step` when it delivered a page (pull-mode readers stop there). */
  pageDelivered = false;

  constructor(
    private readonly handlers: DecodeHandlers = {},
    private readonly opts: DecodeOptions = {},
  ) {}

  get header(): Header | null {
    return this.hdr;
  }

  get trailer(): Trailer | null {
    return this.trl;
  }

  /** True once the trailer has been read and verified. */
  get done(): boolean {
    return this.stage === Stage.Done;
  }

  /** True once the end marker has been read. */
  get pagesEnded(): boolean {
    return this.pageStage === PageStage.Ended;
  }

  /** Checksum of the page just delivered (only with the pageChecksums option or for snapshots). */
  get pageChecksum(): bigint {
    return joinChecksum(this.pageChecksumHalves[0], this.pageChecksumHalves[1]);
  }

  /** Logical bytes read so far. */
  get n(): number {
    return this.bytes;
  }

  /** Feeds a chunk; callbacks fire as parts complete. Bytes after the trailer are ignored. */
  push(chunk: Uint8Array): void {
    let off = 0;
    const end = chunk.length;
    while (off < end || this.hasPendingOutput()) {
      off += this.step(chunk, off, end - off);
    }
  }

  /** Declares the input finished; throws if the file is incomplete. */
  end(): DecodeSummary {
    this.rethrow();
    if (this.stage !== Stage.Done) {
      const empty = this.stage === Stage.Header && this.fill === 0;
      this.fail(new LTXDecodeError('unexpected-eof', empty ? 'EOF' : 'unexpected EOF'));
    }
    return {
      header: this.hdr as Header,
      trailer: this.trl as Trailer,
      pageCount: this.pages,
      n: this.bytes,
    };
  }

  /** Decoded LZ4 bytes are waiting to be parsed (no input needed to make progress). */
  hasPendingOutput(): boolean {
    return this.stage === Stage.Body && this.lz4 !== null && (this.lz4.pending > 0 || this.lz4.done);
  }

  /**
   * Processes input from src[off, off+len) up to the next delivered page or
   * stage boundary and returns how many input bytes it consumed. It may
   * consume 0 bytes while it parses pending decoded LZ4 output.
   */
  step(src: Uint8Array, off: number, len: number): number {
    this.rethrow();
    this.pageDelivered = false;
    try {
      return this.stepUnsafe(src, off, len);
    } catch (e) {
      this.fail(e);
    }
  }

  private stepUnsafe(src: Uint8Array, off: number, len: number): number {
    switch (this.stage) {
      case Stage.Header: {
        const n = Math.min(HEADER_SIZE - this.fill, len);
        this.headerBuf.set(src.subarray(off, off + n), this.fill);
        this.fill += n;
        if (this.fill === HEADER_SIZE) this.onHeaderComplete();
        return n;
      }
      case Stage.Body: {
        const lz4 = this.lz4;
        if (lz4 === null) return this.consumeLogical(src, off, len);
        if (lz4.pending > 0) {
          lz4.consume(this.consumeLogical(lz4.outputBuffer, lz4.outputOffset, lz4.pending));
          return 0;
        }
        const n = lz4.done ? 0 : lz4.push(src, off, len);
        if (lz4.done && lz4.pending === 0) this.onFrameEnd();
        return n;
      }
      case Stage.Trailer: {
        const n = Math.min(TRAILER_SIZE - this.fill, len);
        this.trailerBuf.set(src.subarray(off, off + n), this.fill);
        this.fill += n;
        if (this.fill === TRAILER_SIZE) this.onTrailerComplete();
        return n;
      }
      case Stage.Done:
        return len;
    }
  }

  private onHeaderComplete(): void {
    let h: Header;
    try {
      h = unmarshalHeader(this.headerBuf);
      validateHeader(h);
    } catch (e) {
      if (e instanceof LTXError) {
        const msg = e.rule === 'invalid-file' ? `unmarshal header: ${e.message}` : e.message;
        throw new LTXDecodeError(e.rule, msg, { cause: e });
      }
      throw e;
    }
    this.hdr = h;
    this.crc.update(this.headerBuf);
    this.bytes += HEADER_SIZE;
    this.snapshot = isSnapshot(h);
    this.lock = lockPgno(h.pageSize);
    if (this.snapshot) this.dbChecksum = new DatabaseChecksum(h.pageSize);
    this.frame = new Uint8Array(PAGE_HEADER_SIZE + h.pageSize);
    if (h.flags & HeaderFlagCompressLZ4) this.lz4 = new LZ4FrameDecoder();
    this.stage = Stage.Body;
    this.fill = 0;
    this.handlers.onHeader?.(h);
  }

  /** Parses logical page-block bytes; returns after at most one page. */
  private consumeLogical(src: Uint8Array, off: number, len: number): number {
    const h = this.hdr as Header;
    const frameSize = PAGE_HEADER_SIZE + h.pageSize;
    let pos = off;
    const end = off + len;
    while (pos < end) {
      if (this.pageStage === PageStage.Pgno) {
        const n = Math.min(PAGE_HEADER_SIZE - this.frameFill, end - pos);
        this.frame.set(src.subarray(pos, pos + n), this.frameFill);
        this.frameFill += n;
        pos += n;
        if (this.frameFill === PAGE_HEADER_SIZE) {
          const f = this.frame;
          this.pgno = ((f[0] << 24) | (f[1] << 16) | (f[2] << 8) | f[3]) >>> 0;
          this.crc.update(f, 0, PAGE_HEADER_SIZE);
          this.bytes += PAGE_HEADER_SIZE;
          if (this.pgno === 0) {
            this.onEndMarker();
            if (this.lz4 === null) return pos - off;
            continue;
          }
          if (this.opts.strict) this.checkPageStrict(h, this.pgno);
          this.pageStage = PageStage.Data;
        }
      } else if (this.pageStage === PageStage.Data) {
        if (this.frameFill === PAGE_HEADER_SIZE && end - pos >= h.pageSize) {
          // The whole page is in the input: deliver a view, no copy.
          this.deliverPage(src.subarray(pos, pos + h.pageSize));
          return pos + h.pageSize - off;
        }
        const n = Math.min(frameSize - this.frameFill, end - pos);
        this.frame.set(src.subarray(pos, pos + n), this.frameFill);
        this.frameFill += n;
        pos += n;
        if (this.frameFill === frameSize) {
          this.deliverPage(this.frame.subarray(PAGE_HEADER_SIZE));
          return pos - off;
        }
      } else {
        // Go reads one more byte after the end marker and requires EOF.
        throw new LTXDecodeError('expected-lz4-end-frame', 'expected lz4 end frame');
      }
    }
    return pos - off;
  }

  private checkPageStrict(h: Header, pgno: number): void {
    if (pgno > h.commit) {
      throw new LTXDecodeError('page-out-of-bounds', `page number ${pgno} out-of-bounds for commit size ${h.commit}`);
    }
    if (pgno === this.lock) throw new LTXDecodeError('lock-page', `lock page not allowed in ltx file: pgno=${pgno}`);
    const err = pageOrderError(this.snapshot, this.prevPgno, pgno, this.lock);
    if (err !== null) throw new LTXDecodeError(err.rule, err.message);
  }

  private deliverPage(data: Uint8Array): void {
    this.crc.update(data);
    this.bytes += data.length;
    if (this.snapshot || this.opts.pageChecksums) {
      checksumPageInto(this.pgno, data, this.pageChecksumHalves, 0);
      if (this.snapshot && this.pgno !== this.lock) {
        (this.dbChecksum as DatabaseChecksum).xorHalves(this.pageChecksumHalves[0], this.pageChecksumHalves[1]);
      }
    }
    this.pages++;
    this.prevPgno = this.pgno;
    this.pageStage = PageStage.Pgno;
    this.frameFill = 0;
    this.pageDelivered = true;
    this.handlers.onPage?.(this.pgno, data);
  }

  private onEndMarker(): void {
    this.pageStage = PageStage.Ended;
    const h = this.hdr as Header;
    if (this.opts.strict && this.snapshot) {
      const last = h.commit === this.lock ? h.commit - 1 : h.commit;
      if (this.prevPgno !== last) {
        throw new LTXDecodeError(
          'snapshot-incomplete',
          `snapshot transaction file must end at commit page ${h.commit}: last page ${this.prevPgno}`,
        );
      }
    }
    if (this.lz4 === null) {
      this.stage = Stage.Trailer;
      this.fill = 0;
    }
  }

  private onFrameEnd(): void {
    if (this.pageStage !== PageStage.Ended) throw new LTXDecodeError('unexpected-eof', 'unexpected EOF');
    this.stage = Stage.Trailer;
    this.fill = 0;
  }

  private onTrailerComplete(): void {
    const h = this.hdr as Header;
    const t = unmarshalTrailer(this.trailerBuf);
    this.crc.update(this.trailerBuf, 0, 8);
    this.bytes += TRAILER_SIZE;
    const fileChecksum = ChecksumFlag | this.crc.digest();
    if (fileChecksum !== t.fileChecksum) throw new LTXDecodeError('file-checksum-mismatch', 'file checksum mismatch');
    if (this.snapshot) {
      const calc = (this.dbChecksum as DatabaseChecksum).value;
      if (calc !== t.postApplyChecksum) {
        throw new LTXDecodeError(
          'post-apply-checksum-mismatch',
          `post-apply checksum in trailer (${formatHex16(t.postApplyChecksum)}) does not match calculated checksum (${formatHex16(calc)})`,
        );
      }
    }
    if (this.opts.strict) checkTrailerStrict(h, t);
    this.trl = t;
    this.stage = Stage.Done;
    this.handlers.onTrailer?.(t);
  }

  private rethrow(): void {
    if (this.failure !== null) throw this.failure;
  }

  /** Remembers the first error so a failed decoder keeps failing the same way. */
  private fail(e: unknown): never {
    this.failure = e;
    throw e;
  }
}

function checkTrailerStrict(h: Header, t: Trailer): void {
  const post = t.postApplyChecksum;
  if (post === 0n) throw new LTXDecodeError('post-apply-checksum-required', 'post-apply checksum required');
  if (Number(post >> 32n) < CHECKSUM_FLAG_HI) {
    throw new LTXDecodeError('invalid-post-apply-checksum-format', 'invalid post-apply checksum format');
  }
  if (h.commit === 0 && post !== ChecksumFlag) {
    throw new LTXDecodeError('deleted-database-post-apply-checksum', 'post-apply checksum must be empty for zero-length database');
  }
}

/** Decodes a whole in-memory LTX file. */
export function decodeBytes(bytes: Uint8Array, handlers: DecodeHandlers = {}, opts: DecodeOptions = {}): DecodeSummary {
  const dec = new LTXDecoder(handlers, opts);
  dec.push(bytes);
  return dec.end();
}

/** Decodes an async byte stream (e.g. an HTTP body) with constant memory. */
export async function decodeStream(
  source: AsyncIterable<Uint8Array>,
  onPage?: (pgno: number, data: Uint8Array) => void,
  opts: DecodeOptions = {},
): Promise<DecodeSummary> {
  const dec = new LTXDecoder(onPage ? { onPage } : {}, opts);
  for await (const chunk of source) dec.push(chunk);
  return dec.end();
}
