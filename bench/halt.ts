/**
 * `npm run bench:halt`: single-row commits on a replica under the HALT lock
 * (ref §8: each is forwarded to the primary before it is acknowledged),
 * against the same commits on the primary's mount and on a plain folder, in
 * one run. One primary and one replica (static lease, strict-verify off) on
 * this machine, python3 clients (bench/programs/halt-commits.py). Prints
 * markdown; BENCH_QUICK=1 shortens it. The daemons are closed and their
 * mounts removed on every exit path.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCluster, waitConverged } from '../test/helpers/cluster.js';
import { lastJsonLine, numberField, runProgram } from './fuse/child.js';
import { CleanupStack, cleanUpOnSignals } from './fuse/cleanup.js';
import { programsDir } from './fuse/paths.js';
import { markdownTable } from './fuse/report.js';
import { runLine } from './idle-setting.js';
import { mountBenchBlocker } from './mount-prereq.js';

const QUICK = process.env.BENCH_QUICK === '1';
const SECONDS = QUICK ? 2 : 5;
const WARMUP_SECONDS = QUICK ? 0.5 : 2;
const PROGRAM = join(programsDir, 'halt-commits.py');

function progress(message: string): void {
  process.stderr.write(`[bench:halt] ${message}\n`);
}

async function commitsPerSecond(db: string, mode: string, halt: boolean, cleanup: CleanupStack): Promise<number> {
  const out = await runProgram('python3', [PROGRAM, db, mode, String(SECONDS), String(WARMUP_SECONDS), halt ? '1' : '0'], { timeoutMs: 120_000, cleanup });
  const r = lastJsonLine(out);
  return numberField(r, 'commits') / numberField(r, 'seconds');
}


async function main(): Promise<void> {
  const why = mountBenchBlocker();
  if (why !== null) throw new Error(why);
  const loadAtStart = loadavg();
  const cleanup = new CleanupStack();
  cleanUpOnSignals(cleanup);
  const plain = mkdtempSync(join(tmpdir(), 'litefs-bench-halt-'));
  cleanup.push('remove the plain folder', () => rmSync(plain, { recursive: true, force: true }));
  try {
    progress('starting a primary and a replica (strict-verify off)');
    const cluster = await startCluster(1, { strictVerify: false }, { strictVerify: false });
    cleanup.push('close the cluster', () => cluster.close());
    const rows: string[][] = [];
    for (const mode of ['WAL', 'DELETE']) {
      const db = `halt-${mode.toLowerCase()}.db`;
      progress(`${mode}: plain folder`);
      const onPlain = await commitsPerSecond(join(plain, db), mode, false, cleanup);
      progress(`${mode}: the primary's mount`);
      const onPrimary = await commitsPerSecond(join(cluster.primary.mnt, db), mode, false, cleanup);
      await waitConverged(cluster, db);
      progress(`${mode}: the replica's mount under the HALT lock`);
      const onReplica = await commitsPerSecond(join(cluster.replicas[0]!.mnt, db), mode, true, cleanup);
      const pct = (x: number): string => `${((100 * x) / onPlain).toFixed(1)}%`;
      rows.push([
        `${mode} (${mode === 'WAL' ? 'NORMAL' : 'FULL'})`,
        Math.round(onPlain).toLocaleString('en-US'),
        `${Math.round(onPrimary).toLocaleString('en-US')} (${pct(onPrimary)})`,
        `${Math.round(onReplica).toLocaleString('en-US')} (${pct(onReplica)}; ${((100 * onReplica) / onPrimary).toFixed(0)}% of the primary's)`,
      ]);
    }
    console.log(
      [
        '### Results of `npm run bench:halt`',
        '',
        runLine(QUICK ? 'quick (BENCH_QUICK=1)' : 'full', loadAtStart),
        '',
        `Single-row INSERT commits from one python3 connection for ${SECONDS} s after ${WARMUP_SECONDS} s unrecorded; commits/s and the share of the plain folder's rate.`,
        '',
        markdownTable(['journal mode (synchronous)', 'plain folder', "primary's mount", "replica's mount under the HALT lock"], rows),
      ].join('\n'),
    );
  } finally {
    await cleanup.runAll();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:halt failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
