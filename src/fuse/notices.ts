/**
 * Cache-invalidation notices, queued by the FUSE thread or the main thread
 * and written to /dev/fuse by the notifier thread (notifier-worker.ts).
 *
 * Why a separate thread: the kernel may wait inside a NOTIFY_INVAL_INODE
 * write for a page whose READ is queued behind it; if the writer were the
 * only thread answering requests, that would deadlock.
 */
import type { MessagePort } from 'node:worker_threads';

export type Notice =
  | { readonly kind: 'inval-inode'; readonly ino: number; readonly off: number; readonly len: number }
  | { readonly kind: 'inval-entry'; readonly parent: number; readonly name: string }
  | { readonly kind: 'delete'; readonly parent: number; readonly child: number; readonly name: string }
  /** Put `data` into the kernel's page cache of `ino` at `off` (pages mapped by processes change in place). */
  | { readonly kind: 'store'; readonly ino: number; readonly off: number; readonly data: Uint8Array };

/** One message to the notifier: notices written in order, then acknowledged. */
export interface NoticeBatch {
  readonly seq: number;
  readonly notices: Notice[];
  /** FUSE side only: wake the FUSE thread (a STATFS of the mount) once written. */
  readonly wake: boolean;
}

/** The notifier's acknowledgement, posted back on the port the batch came on. */
export interface NoticeAck {
  readonly ackSeq: number;
  /** Notices the kernel refused with something other than ENOENT (not cached). */
  readonly failures: number;
}

/** Index in the shared BigInt64Array where the notifier stores the FUSE side's last written seq. */
export const WRITTEN_SEQ_SLOT = 0;

/**
 * The FUSE thread's side: `invalInode` etc. return at once with a sequence
 * number; `written()` says how far the notifier got (a shared counter, no
 * message needed). Notices queued while handling one request are sent as one
 * batch when the session finishes that request.
 */
export class NoticeQueue {
  private seq = 0;
  private pending: Notice[] = [];
  private wantWake = false;

  constructor(
    private readonly port: MessagePort,
    private readonly shared: BigInt64Array,
  ) {}

  /** Drop cached pages of `ino` in [off, off+len) (len 0 = to EOF; off -1 = attributes only). */
  invalInode(ino: number, off: number, len: number, wake = false): number {
    return this.push({ kind: 'inval-inode', ino, off, len }, wake);
  }

  /** Drop the cached name `name` in directory `parent`. */
  invalEntry(parent: number, name: string, wake = false): number {
    return this.push({ kind: 'inval-entry', parent, name }, wake);
  }

  /** Tell the kernel `name` (inode `child`) in `parent` was deleted. */
  delete(parent: number, child: number, name: string, wake = false): number {
    return this.push({ kind: 'delete', parent, child, name }, wake);
  }

  /**
   * Replace cached bytes of `ino` with `data` (NOTIFY_STORE). Unlike an
   * invalidation this cannot make the kernel write a dirty mmapped page
   * back over the new data first.
   */
  store(ino: number, off: number, data: Uint8Array, wake = false): number {
    return this.push({ kind: 'store', ino, off, data }, wake);
  }

  /** Highest sequence number the notifier has written. */
  written(): number {
    return Number(Atomics.load(this.shared, WRITTEN_SEQ_SLOT));
  }

  /** Highest sequence number queued so far. */
  queued(): number {
    return this.seq;
  }

  /** Sends what was queued (the session calls this after each request). */
  flush(): void {
    if (this.pending.length === 0) return;
    const batch: NoticeBatch = { seq: this.seq, notices: this.pending, wake: this.wantWake };
    this.pending = [];
    this.wantWake = false;
    this.port.postMessage(batch);
  }

  private push(n: Notice, wake: boolean): number {
    this.pending.push(n);
    if (wake) this.wantWake = true;
    return ++this.seq;
  }
}
