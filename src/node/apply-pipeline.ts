/**
 * The replica's apply queue: received and verified LTX files wait here, in
 * stream order, while the one before them is applied on the FUSE thread, so
 * the next file's transfer, decoding and fsync overlap the current apply
 * instead of following it (one transaction at a time put receive + apply in
 * series, and a replica fell behind once their sum exceeded the commit
 * interval).
 *
 * Ordered steps that are not files (Ready, heartbeat and HWM callbacks) go
 * through the same queue, so each runs only after every file before it in
 * the stream is applied. One step runs at a time; the first failure stops
 * the queue for good (the stream is dropped), and `close()` removes the
 * files that were never applied.
 */
import { rm } from 'node:fs/promises';
import type { Pos } from '../http/posmap.js';
import { MAX_APPLY_GROUP } from '../store/db.js';
import type { FileDurability } from './ltx-receiver.js';

/** A received file to apply, and the position it produces. */
export interface QueuedFile {
  readonly kind: 'file';
  readonly db: string;
  readonly path: string;
  /** Bytes on disk, counted against the byte bound. */
  readonly size: number;
  readonly pos: Pos;
  /** The LTX header's timestamp, ms since the epoch. */
  readonly timestamp: number;
  /** The file's fdatasync: started when it is queued, awaited before its apply. */
  readonly durability: FileDurability;
  /** May be applied together with the batchable files of `db` queued right behind it. */
  readonly batchable: boolean;
  /**
   * Applies the file and, in the same apply, `more` (files of the same
   * database that followed it, all batchable; empty unless this one is).
   * The applier moves them into ltx/ on success.
   */
  readonly run: (more: readonly QueuedFile[]) => Promise<void>;
}

/** A callback that must run after every file queued before it. */
export interface QueuedCall {
  readonly kind: 'call';
  readonly run: () => void;
}

export type QueuedStep = QueuedFile | QueuedCall;

export interface PipelineLimits {
  /** Files received but not yet applied (the one applying included). */
  readonly maxFiles: number;
  /** Their bytes; one file larger than this is still taken when the queue is empty. */
  readonly maxBytes: number;
  /** Files applied together at most (within the store's apply group bound, MAX_APPLY_GROUP). */
  readonly maxBatch: number;
}

export const DEFAULT_PIPELINE_LIMITS: PipelineLimits = { maxFiles: 16, maxBytes: 64 * 1024 * 1024, maxBatch: Math.min(16, MAX_APPLY_GROUP) };

export class ApplyPipeline {
  private readonly steps: QueuedStep[] = [];
  /** The step running now (still counted in `files`/`bytes` while it is a file). */
  private running: Promise<void> | null = null;
  private files = 0;
  private bytes = 0;
  /** By database: the position the last queued file produces. */
  private readonly tail = new Map<string, { pos: Pos; count: number }>();
  private failure: Error | null = null;
  private closed = false;
  /** Woken whenever a step finishes or the queue fails. */
  private waiters: (() => void)[] = [];

  constructor(
    private readonly limits: PipelineLimits,
    /** Told once, with the first failure. */
    private readonly onFailure: (err: Error) => void,
  ) {}

  /** Files queued or applying. */
  get fileCount(): number {
    return this.files;
  }

  /** The position `db` will be at once its queued files are applied; undefined when none is queued. */
  expected(db: string): Pos | undefined {
    return this.tail.get(db)?.pos;
  }

  /** Queues a step; it runs after every step queued before it. */
  push(step: QueuedStep): void {
    if (this.closed || this.failure !== null) throw this.failure ?? new Error('apply queue closed');
    this.steps.push(step);
    if (step.kind === 'file') {
      void step.durability.sync().catch(() => {});
      this.files++;
      this.bytes += step.size;
      const t = this.tail.get(step.db);
      this.tail.set(step.db, { pos: step.pos, count: (t?.count ?? 0) + 1 });
    }
    if (this.running === null) this.running = this.next();
  }

  /** Resolves once one more file fits; rejects with the queue's failure. */
  async waitForRoom(signal: AbortSignal): Promise<void> {
    await this.waitUntil(signal, () => this.files < this.limits.maxFiles && (this.files === 0 || this.bytes < this.limits.maxBytes));
  }

  /** Resolves once every queued step ran; rejects with the queue's failure. */
  async drain(signal: AbortSignal): Promise<void> {
    await this.waitUntil(signal, () => this.steps.length === 0 && this.running === null);
  }

  /**
   * Stops the queue: waits for the step that is running (an apply on the
   * FUSE thread cannot be called back, and the next connection must see its
   * position) and removes the files of the steps that never ran.
   */
  async close(): Promise<void> {
    this.closed = true;
    const left = this.steps.splice(0);
    await this.running?.catch(() => {});
    for (const s of left) if (s.kind === 'file') await removeFile(s);
    this.files = 0;
    this.bytes = 0;
    this.tail.clear();
    this.wake();
  }

  private async next(): Promise<void> {
    // push() stores the returned promise in `running`; a loop that found
    // nothing to wait for must not set it back to null before that.
    await Promise.resolve();
    for (;;) {
      const step = this.steps[0];
      if (step === undefined || this.closed || this.failure !== null) {
        this.running = null;
        this.wake();
        return;
      }
      if (step.kind === 'call') {
        this.steps.shift();
        this.runCall(step);
        continue;
      }
      const { files, calls } = this.takeBatch(step);
      try {
        for (const f of files) await f.durability.sync();
        // Closed while the files were being synced: never handed over.
        if (this.closed) throw new Error('apply queue closed');
        await step.run(files.slice(1));
      } catch (err) {
        // The files were not handed over: they are ours to remove.
        for (const f of files) await removeFile(f);
        if (!this.closed) {
          this.failure = err instanceof Error ? err : new Error(String(err));
          this.onFailure(this.failure);
        }
      }
      for (const f of files) this.finished(f);
      // Steps that were queued between the files run after all of them (they only need the files before them applied).
      if (this.failure === null) for (const c of calls) this.runCall(c);
      this.wake();
    }
  }

  /**
   * Takes `head` off the queue with the batchable files of its database
   * right behind it (up to maxBatch), and the calls queued between them.
   */
  private takeBatch(head: QueuedFile): { files: QueuedFile[]; calls: QueuedCall[] } {
    const files = [head];
    let end = 1;
    if (head.batchable) {
      for (let i = 1; i < this.steps.length && files.length < this.limits.maxBatch; i++) {
        const s = this.steps[i]!;
        if (s.kind === 'call') continue;
        if (s.db !== head.db || !s.batchable) break;
        files.push(s);
        end = i + 1;
      }
    }
    const taken = this.steps.splice(0, end);
    return { files, calls: taken.filter((s): s is QueuedCall => s.kind === 'call') };
  }

  private runCall(call: QueuedCall): void {
    try {
      call.run();
    } catch (err) {
      this.failure = err instanceof Error ? err : new Error(String(err));
      this.onFailure(this.failure);
    }
  }

  private finished(f: QueuedFile): void {
    this.files--;
    this.bytes -= f.size;
    const t = this.tail.get(f.db);
    if (t !== undefined && --t.count === 0) this.tail.delete(f.db);
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const fn of w) fn();
  }

  private async waitUntil(signal: AbortSignal, cond: () => boolean): Promise<void> {
    for (;;) {
      signal.throwIfAborted();
      if (this.failure !== null) throw this.failure;
      if (this.closed) throw new Error('apply queue closed');
      if (cond()) return;
      await new Promise<void>((resolve) => {
        const done = (): void => {
          signal.removeEventListener('abort', done);
          resolve();
        };
        this.waiters.push(done);
        signal.addEventListener('abort', done, { once: true });
      });
    }
  }
}

/** Removes a file that was never handed over (its descriptor closed first, unless its sync closes it). */
async function removeFile(f: QueuedFile): Promise<void> {
  f.durability.release();
  await rm(f.path, { force: true });
}
