/**
 * `npm run bench:snapshot`: a new replica joins while a writer commits on
 * the primary, so its first copy is a snapshot of a busy database (ref
 * §9.5: a replica at TXID 0 always gets one). For each journal mode, a fresh
 * primary (static lease, strict-verify off, LZ4 on) with a database of
 * DB_MIB MiB, a python3 writer committing single rows flat out
 * (bench/programs/snapshot-writer.py), then a replica started: how long
 * until it holds the position the primary had when it started, how long the
 * primary held the database's read locks for the copy (its log line), the
 * primary's peak memory over the snapshot (VmHWM, reset just before), and
 * what the writer saw: commits/s and its slowest commit inside and outside
 * the snapshot. No plain-folder ratio applies: a plain folder does not
 * replicate. Prints markdown; BENCH_QUICK=1 shortens it. Daemons are closed
 * and mounts removed on every exit path.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { readPos, replicaOptions, waitFor } from '../test/helpers/cluster.js';
import { type LiteFSDaemon, startLiteFS } from '../test/helpers/litefs-daemon.js';
import { lastJsonLine, numberField, runProgram } from './fuse/child.js';
import { CleanupStack, cleanUpOnSignals } from './fuse/cleanup.js';
import { programsDir } from './fuse/paths.js';
import { markdownTable } from './fuse/report.js';
import { runLine } from './idle-setting.js';
import { mountBenchBlocker } from './mount-prereq.js';

const QUICK = process.env.BENCH_QUICK === '1';
const DB_MIB = QUICK ? 32 : 256;
/** The writer runs this long before the replica starts and after it caught up. */
const MARGIN_MS = QUICK ? 500 : 2000;
const PROGRAM = join(programsDir, 'snapshot-writer.py');

function progress(message: string): void {
  process.stderr.write(`[bench:snapshot] ${message}\n`);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function txidOf(pos: string): bigint {
  return pos === '' ? 0n : BigInt('0x' + pos.split('/')[0]!);
}

/** A process's peak resident memory (VmHWM) in MiB. */
function peakRSSMiB(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmHWM:'));
  return Number(line?.split(/\s+/)[1] ?? 0) / 1024;
}

interface SnapshotResult {
  mode: string;
  catchUpS: number;
  heldMs: number | undefined;
  peakMiB: number;
  commitsPerS: number;
  p50Ms: number;
  maxInsideMs: number;
  maxOutsideMs: number;
}

async function measure(mode: string, work: string, cleanup: CleanupStack): Promise<SnapshotResult> {
  progress(`${mode}: a primary with a ${DB_MIB} MiB database`);
  const primary = await startLiteFS({ strictVerify: false });
  const nodes: LiteFSDaemon[] = [primary];
  const closeAll = async (): Promise<void> => {
    for (const n of nodes.reverse()) await n.close().catch(() => undefined);
  };
  cleanup.push(`close the ${mode} daemons`, closeAll);
  try {
    const db = join(primary.mnt, 'busy.db');
    await runProgram('python3', [PROGRAM, 'init', db, mode, String(DB_MIB)], { timeoutMs: 600_000, cleanup });
    const stopFile = join(work, `stop-${mode}`);
    const writer = runProgram('python3', [PROGRAM, 'write', db, stopFile], { timeoutMs: 900_000, cleanup });
    try {
      await sleep(MARGIN_MS);
      // Peak memory from here on: writing 5 to clear_refs resets VmHWM (Linux 4.0+).
      writeFileSync(`/proc/${primary.pid}/clear_refs`, '5');
      const joinedAt = txidOf(await readPos(primary, 'busy.db'));
      progress(`${mode}: a replica joins at TXID ${joinedAt}`);
      const started = Date.now();
      const replica = await startLiteFS(replicaOptions(primary, { strictVerify: false }));
      nodes.push(replica);
      await waitFor(() => `the replica to reach TXID ${joinedAt}`, async () => txidOf(await readPos(replica, 'busy.db')) >= joinedAt, 600_000, nodes);
      const caughtUp = Date.now();
      const peakMiB = peakRSSMiB(primary.pid!);
      await sleep(MARGIN_MS);
      writeFileSync(stopFile, '');
      const r = lastJsonLine(await writer);
      const slow = (r.slow as [number, number][]).map(([at, ms]) => ({ at: at * 1000, ms }));
      const inside = slow.filter((s) => s.at + s.ms >= started && s.at <= caughtUp).map((s) => s.ms);
      const outside = slow.filter((s) => s.at + s.ms < started || s.at > caughtUp).map((s) => s.ms);
      const held = /busy\.db: snapshot at \S+: \d+ pages copied under the read locks in (\d+) ms/.exec(primary.output());
      return {
        mode,
        catchUpS: (caughtUp - started) / 1000,
        heldMs: held === null ? undefined : Number(held[1]),
        peakMiB,
        commitsPerS: numberField(r, 'commits') / numberField(r, 'seconds'),
        p50Ms: numberField(r, 'p50_ms'),
        maxInsideMs: Math.max(0, ...inside),
        maxOutsideMs: Math.max(0, ...outside),
      };
    } finally {
      writeFileSync(stopFile, '');
      await writer.catch(() => undefined);
    }
  } finally {
    await closeAll();
  }
}

async function main(): Promise<void> {
  const why = mountBenchBlocker();
  if (why !== null) throw new Error(why);
  const loadAtStart = loadavg();
  const cleanup = new CleanupStack();
  cleanUpOnSignals(cleanup);
  const work = mkdtempSync(join(tmpdir(), 'litefs-bench-snapshot-'));
  cleanup.push('remove the work folder', () => rmSync(work, { recursive: true, force: true }));
  try {
    const results: SnapshotResult[] = [];
    for (const mode of ['DELETE', 'WAL']) results.push(await measure(mode, work, cleanup));
    const under = (ms: number): string => (ms === 0 ? '< 20' : ms.toFixed(0));
    console.log(
      [
        '### Results of `npm run bench:snapshot`',
        '',
        runLine(QUICK ? 'quick (BENCH_QUICK=1)' : 'full', loadAtStart),
        '',
        `A ${DB_MIB} MiB database (4000-byte random rows, LZ4 on) on a primary while one python3 connection commits single-row INSERTs flat out; ` +
          'a new replica starts and gets a snapshot. "caught up": replica start → its position at least the one the primary had when it started. ' +
          '"locks held": the primary\'s read locks for the copy to its spool file (its log line). "peak RSS": the primary\'s VmHWM, reset just before the replica starts. ' +
          'Writer columns: over the whole run, and its slowest commit during the snapshot and outside it (commits under 20 ms are not timed one by one).',
        '',
        markdownTable(
          ['journal mode', 'caught up s', 'locks held ms', 'primary peak RSS MiB', 'writer commits/s', 'writer p50 ms', 'slowest commit during ms', 'slowest commit outside ms'],
          results.map((r) => [
            r.mode === 'WAL' ? 'WAL (NORMAL)' : 'DELETE (FULL)',
            r.catchUpS.toFixed(2),
            r.heldMs === undefined ? '?' : String(r.heldMs),
            r.peakMiB.toFixed(0),
            Math.round(r.commitsPerS).toLocaleString('en-US'),
            r.p50Ms.toFixed(2),
            under(r.maxInsideMs),
            under(r.maxOutsideMs),
          ]),
        ),
      ].join('\n'),
    );
  } finally {
    await cleanup.runAll();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:snapshot failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
