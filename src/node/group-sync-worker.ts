/**
 * The syncer thread (src/node/group-syncer.ts): runs group syncs with
 * blocking fsyncs, one job at a time, so neither the FUSE thread nor the
 * main thread's event loop waits for the disk.
 */
import { parentPort } from 'node:worker_threads';
import { SyncfsState, syncGroup } from '../store/group-sync.js';
import { RealIO } from '../store/io.js';
import type { GroupSyncJob } from '../store/messages.js';

/** The syncer's answer to one job. */
export type GroupSyncReport = { readonly db: string; readonly gen: number; readonly ok: true } | { readonly db: string; readonly gen: number; readonly ok: false; readonly message: string };

/** Log lines go to the main thread as strings; reports as objects. */
export type SyncerMessage = GroupSyncReport | string;

const port = parentPort;
if (port === null) throw new Error('group-sync-worker must run in a worker thread');
const io = new RealIO();
const syncfs = new SyncfsState((line) => port.postMessage(line satisfies SyncerMessage));

port.on('message', (job: GroupSyncJob) => {
  let report: GroupSyncReport;
  try {
    syncGroup(io, job, syncfs);
    report = { db: job.db, gen: job.gen, ok: true };
  } catch (err) {
    report = { db: job.db, gen: job.gen, ok: false, message: err instanceof Error ? err.message : String(err) };
  }
  port.postMessage(report satisfies SyncerMessage);
});
