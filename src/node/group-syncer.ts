/**
 * Runs the FUSE thread's once-a-second group syncs (ARCHITECTURE §7) on a
 * thread of their own (group-sync-worker.ts) and reports each back with a
 * `groupSynced` command. On the FUSE thread such a sync stalled every
 * request for 2–20 ms a second (the primary's syncfs forks `sync -f`; a
 * replica's database fsync writes a second of applied pages).
 */
import { Worker } from 'node:worker_threads';
import type { GroupSyncJob, GroupSyncedCommand } from '../store/messages.js';
import type { SyncerMessage } from './group-sync-worker.js';

export class GroupSyncer {
  private readonly worker: Worker;
  private closed = false;

  constructor(
    /** Sends the report to the FUSE thread. */
    private readonly tell: (cmd: GroupSyncedCommand) => void,
    private readonly log: (line: string) => void,
  ) {
    this.worker = new Worker(new URL('./group-sync-worker.js', import.meta.url));
    // Idle between jobs: it must not keep the process alive.
    this.worker.unref();
    this.worker.on('message', (msg: SyncerMessage) => this.onMessage(msg));
    this.worker.on('error', (err) => this.log(`ERROR: group syncer thread failed: ${err.message}`));
  }

  run(jobs: readonly GroupSyncJob[]): void {
    if (this.closed) return;
    for (const job of jobs) this.worker.postMessage(job);
  }

  private onMessage(msg: SyncerMessage): void {
    if (typeof msg === 'string') return this.log(msg);
    if (!msg.ok) this.log(`ERROR: ${msg.db}: group sync failed (the FUSE thread syncs the group later): ${msg.message}`);
    if (this.closed) return;
    try {
      this.tell({ type: 'groupSynced', db: msg.db, gen: msg.gen, ok: msg.ok });
    } catch {
      // Unmounting: the FUSE thread syncs every group itself at unmount.
    }
  }

  /** Jobs still queued are dropped: unmount syncs every group on the FUSE thread. */
  async close(): Promise<void> {
    this.closed = true;
    await this.worker.terminate();
  }
}
