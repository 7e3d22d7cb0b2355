/**
 * The primary's side of replication (ref §7.5, §9.5) for a store that
 * writes `<data>/dbs/<db>/ltx/<min>-<max>.ltx`: the positions of the
 * databases, change fan-out to every /stream subscriber, verified LTX files
 * to stream, and snapshots read from the data directory.
 *
 * Positions start from the newest LTX file of each database and then follow
 * the store's `tx` events (`onTx`). A snapshot is copied to a spool file
 * while the FUSE thread holds the database's read locks (image-spool.ts),
 * checked against the position held, and then encoded from the spool.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { ChangeNotice, ChangeSubscription, LTXFileStream, ReplicationSource } from '../http/api.js';
import type { Pos } from '../http/posmap.js';
import {
  HEADER_SIZE,
  HeaderFlagCompressLZ4,
  LTXDecoder,
  LTXEncoder,
  formatHex16,
  formatPos,
  lockPgno,
  makeHeader,
  TRAILER_SIZE,
  unmarshalHeader,
  unmarshalTrailer,
  type DecodeSummary,
} from '../ltx/index.js';
import { spoolImage, type ImageLocks, type SpooledImage } from './image-spool.js';
import { GoWriteSplitter } from './go-write-layout.js';
import { databaseNames, latestLTXFacts, ltxDir, ltxFileName } from './ltx-facts.js';

/** Go's io.Copy buffer: an incremental file goes out in pieces of this size, one chunk each. */
export const LTX_PIECE_SIZE = 32 * 1024;
const VERIFY_READ_SIZE = 64 * 1024;
/** Page size for a snapshot of a deleted database whose LTX files say none. */
const DEFAULT_PAGE_SIZE = 4096;

export interface DataDirReplicationSourceOptions {
  readonly dataDir: string;
  /** This node's id, written into snapshot headers. */
  readonly nodeID: bigint;
  /** data.compress: snapshots are LZ4-compressed. */
  readonly compress: boolean;
  /** Whether the node starts as primary (default true). */
  readonly primary?: boolean;
  readonly log?: (line: string) => void;
  readonly now?: () => number;
  /** Read lock sets on the FUSE thread, under which snapshots are copied. */
  readonly images: ImageLocks;
}

export class DataDirReplicationSource implements ReplicationSource {
  private readonly o: DataDirReplicationSourceOptions;
  private readonly positions = new Map<string, Pos>();
  /** By database: its newest commit's LTX file, when the store handed over its bytes. */
  private readonly newest = new Map<string, { readonly txid: bigint; readonly bytes: Uint8Array }>();
  private readonly subscribers = new Set<Subscriber>();
  private primary: AbortController | undefined;

  constructor(options: DataDirReplicationSourceOptions) {
    this.o = options;
    for (const db of databaseNames(options.dataDir)) {
      const facts = latestLTXFacts(options.dataDir, db);
      if (facts !== undefined) this.positions.set(db, { txid: facts.header.maxTXID, postApplyChecksum: facts.postApplyChecksum });
    }
    this.setPrimary(options.primary ?? true);
  }

  /**
   * A transaction of `db` is durable (the store's `tx` event): move its
   * position and wake the streams. `ltx`: the transaction's LTX file as the
   * store wrote it, which streams then send without reading it back.
   */
  onTx(db: string, pos: Pos, ltx?: Uint8Array): void {
    this.positions.set(db, pos);
    if (ltx !== undefined) this.newest.set(db, { txid: pos.txid, bytes: ltx });
    else this.newest.delete(db);
    this.markDirty(db);
  }

  /** True while the replica `nodeID` streams from this node. */
  isStreaming(nodeID: bigint): boolean {
    for (const s of this.subscribers) if (s.nodeID === nodeID) return true;
    return false;
  }

  /** How many replicas stream from this node now. */
  get streams(): number {
    return this.subscribers.size;
  }

  /** Every subscriber learns that `name` changed (LiteFS MarkDirty). */
  markDirty(name: string): void {
    for (const s of this.subscribers) s.markDirty(name);
  }

  /**
   * Hands the lease to the replica streaming as `nodeID`: its stream sends
   * what is pending, then a Handoff frame, then ends. Undefined if it is not
   * connected; otherwise a promise that resolves true once the frame was
   * written, false if the stream ended without it.
   */
  handoff(nodeID: bigint, leaseID: string): Promise<boolean> | undefined {
    for (const s of this.subscribers) {
      if (s.nodeID === nodeID) {
        s.handoff(leaseID);
        return s.handoffOutcome;
      }
    }
    return undefined;
  }

  /** Becoming replica aborts the signal every /stream holds; becoming primary starts a new one. */
  setPrimary(primary: boolean): void {
    if (primary) {
      if (this.primary === undefined || this.primary.signal.aborted) this.primary = new AbortController();
    } else {
      this.primary?.abort();
      this.primary = undefined;
    }
  }

  close(): void {
    this.setPrimary(false);
  }

  primarySignal(): AbortSignal | undefined {
    return this.primary?.signal;
  }

  subscribeChanges(replicaID: bigint): ChangeSubscription {
    const sub = new Subscriber(replicaID, () => this.subscribers.delete(sub));
    this.subscribers.add(sub);
    return sub;
  }

  databaseNames(): string[] {
    return [...this.positions.keys()].sort();
  }

  position(name: string): Pos | undefined {
    return this.positions.get(name);
  }

  /** No backups yet: nothing is known to be in long-term storage. */
  hwm(): bigint {
    return 0n;
  }

  async openLTXFile(name: string, txid: bigint): Promise<LTXFileStream | undefined> {
    // Only databases we know: the name comes from the replica's request.
    if (!this.positions.has(name)) return undefined;
    const kept = this.newest.get(name);
    const inMemory = kept !== undefined && kept.txid === txid ? memoryStream(kept.bytes, txid) : undefined;
    if (inMemory !== undefined) return inMemory;
    const path = join(ltxDir(this.o.dataDir, name), ltxFileName(formatHex16(txid)));
    let file: FileHandle;
    try {
      file = await open(path, 'r');
    } catch (err) {
      // Retention removed it, or only a snapshot 1-N holds this TXID.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.log(`replication: ${name}: cannot open ${path}: ${message(err)}`);
      return undefined;
    }
    // The descriptor stays open while the file streams: retention may unlink it meanwhile.
    let summary: DecodeSummary;
    try {
      summary = await verify(file);
      const { minTXID, maxTXID } = summary.header;
      if (minTXID !== txid || maxTXID !== txid) throw new Error(`header holds TXIDs ${formatHex16(minTXID)}-${formatHex16(maxTXID)}`);
    } catch (err) {
      await file.close();
      this.log(`replication: ${name}: ${path} fails verification, sending a snapshot instead: ${message(err)}`);
      return undefined;
    }
    return {
      preApplyChecksum: summary.header.preApplyChecksum,
      pos: { txid: summary.header.maxTXID, postApplyChecksum: summary.trailer.postApplyChecksum },
      body: pieces(file),
      close: () => file.close(),
    };
  }

  async writeSnapshot(name: string, write: (bytes: Uint8Array) => Promise<void>, signal: AbortSignal): Promise<Pos> {
    if (!this.positions.has(name)) throw new Error(`snapshot ${name}: database not found`);
    let image: SpooledImage;
    try {
      image = await spoolImage(this.o.dataDir, name, this.o.images, signal);
    } catch (err) {
      throw new Error(`snapshot ${name}: ${message(err)}`);
    }
    this.log(`replication: ${name}: snapshot at ${formatPos(image.pos)}: ${image.pageCount} pages copied under the read locks in ${Math.round(image.heldMs)} ms`);
    try {
      await this.encodeSnapshot(name, image, write, signal);
    } finally {
      await image.close();
    }
    return image.pos;
  }

  /**
   * Encodes the image as a snapshot LTX (ref §6.9) and writes it with Go's
   * write layout, awaiting each write (back-pressure from the stream).
   */
  private async encodeSnapshot(name: string, image: SpooledImage, write: (bytes: Uint8Array) => Promise<void>, signal: AbortSignal): Promise<void> {
    const pageSize = image.pageSize || this.lastPageSize(name);
    const splitter = new GoWriteSplitter();
    const enc = new LTXEncoder(splitter);
    const flush = async (): Promise<void> => {
      for (const piece of splitter.take()) await write(piece);
    };
    enc.encodeHeader(
      makeHeader({
        flags: this.o.compress ? HeaderFlagCompressLZ4 : 0,
        pageSize,
        commit: image.pageCount,
        minTXID: 1n,
        maxTXID: image.pos.txid,
        timestamp: BigInt((this.o.now ?? Date.now)()),
        nodeID: this.o.nodeID,
      }),
    );
    const lock = lockPgno(pageSize);
    let pgno = 0;
    for await (const page of image.pages(signal)) {
      if (++pgno === lock) continue;
      if (signal.aborted) throw new Error('snapshot cancelled');
      enc.encodePage(pgno, page);
      await flush();
    }
    enc.setPostApplyChecksum(image.pos.postApplyChecksum);
    enc.close();
    await flush();
  }

  /** The page size a deleted database last had (its drop LTX file records it). */
  private lastPageSize(name: string): number {
    return latestLTXFacts(this.o.dataDir, name)?.header.pageSize || DEFAULT_PAGE_SIZE;
  }

  private log(line: string): void {
    this.o.log?.(line);
  }
}

/**
 * One /stream client's view of the changes (LiteFS's change-set
 * subscriber): a set of dirty database names and a pending handoff, plus
 * a coalescing wake-up. A set, not a queue: a slow stream never backs up,
 * it diffs positions itself.
 */
class Subscriber implements ChangeSubscription {
  private dirty = new Set<string>();
  private handoffLeaseID: string | undefined;
  private wake: (() => void) | undefined;
  private closed = false;
  private outcomeResolve: (sent: boolean) => void = () => {};
  /** true once a Handoff frame was written on this stream; false if it ended first. */
  readonly handoffOutcome: Promise<boolean> = new Promise((res) => (this.outcomeResolve = res));

  constructor(
    readonly nodeID: bigint,
    private readonly onClose: () => void,
  ) {}

  markDirty(name: string): void {
    this.dirty.add(name);
    this.poke();
  }

  handoff(leaseID: string): void {
    this.handoffLeaseID = leaseID;
    this.poke();
  }

  async next(signal: AbortSignal): Promise<ChangeNotice | undefined> {
    for (;;) {
      if (this.dirty.size > 0 || this.handoffLeaseID !== undefined) {
        const notice: ChangeNotice =
          this.handoffLeaseID === undefined ? { dirty: this.dirty } : { dirty: this.dirty, handoffLeaseID: this.handoffLeaseID };
        this.dirty = new Set();
        this.handoffLeaseID = undefined;
        return notice;
      }
      // Pending changes stay where they are when the wait is abandoned.
      if (signal.aborted || this.closed) return undefined;
      await new Promise<void>((resolve) => {
        const done = (): void => {
          signal.removeEventListener('abort', done);
          this.wake = undefined;
          resolve();
        };
        this.wake = done;
        signal.addEventListener('abort', done, { once: true });
      });
    }
  }

  handoffSent(): void {
    this.outcomeResolve(true);
  }

  close(): void {
    this.closed = true;
    this.poke();
    this.onClose();
    this.outcomeResolve(false);
  }

  private poke(): void {
    this.wake?.();
  }
}


/** Go's Decoder.Verify over an open file: every checksum, no data kept. */
async function verify(file: FileHandle): Promise<DecodeSummary> {
  const dec = new LTXDecoder({});
  const buf = Buffer.allocUnsafe(VERIFY_READ_SIZE);
  for (let position = 0; ; ) {
    const { bytesRead } = await file.read(buf, 0, buf.length, position);
    if (bytesRead === 0) break;
    dec.push(buf.subarray(0, bytesRead));
    position += bytesRead;
  }
  return dec.end();
}

/** A file the store just wrote, from its bytes (our encoder's output: no verification needed). */
function memoryStream(bytes: Uint8Array, txid: bigint): LTXFileStream | undefined {
  const header = unmarshalHeader(bytes.subarray(0, HEADER_SIZE));
  if (header.minTXID !== txid || header.maxTXID !== txid) return undefined;
  const trailer = unmarshalTrailer(bytes.subarray(bytes.length - TRAILER_SIZE));
  return {
    preApplyChecksum: header.preApplyChecksum,
    pos: { txid: header.maxTXID, postApplyChecksum: trailer.postApplyChecksum },
    body: memoryPieces(bytes),
    close: async () => {},
  };
}

/** As `pieces`, from memory. */
async function* memoryPieces(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  for (let off = 0; off < bytes.length; off += LTX_PIECE_SIZE) yield bytes.subarray(off, off + LTX_PIECE_SIZE);
}

async function* pieces(file: FileHandle): AsyncGenerator<Uint8Array> {
  for (let position = 0; ; ) {
    const buf = Buffer.allocUnsafe(LTX_PIECE_SIZE);
    const { bytesRead } = await file.read(buf, 0, buf.length, position);
    if (bytesRead === 0) return;
    position += bytesRead;
    yield buf.subarray(0, bytesRead);
  }
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
