/**
 * `npm run fuzz`: every target in its own worker thread, FUZZ_CASES inputs
 * each (default 100,000), seed FUZZ_SEED (default: time-based, printed).
 * A worker that reports no progress for HANG_MS is declared hung. Each worker
 * runs with a heap limit, so an allocation beyond the bound kills it and is
 * reported as a finding.
 */
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { fuzzTarget, type FuzzFinding } from './engine.js';
import { loadTargets } from './targets.js';

const HANG_MS = 30_000;

interface WorkerArgs {
  targetName: string;
  seed: number;
  cases: number;
}

type WorkerMessage = { kind: 'progress'; done: number } | { kind: 'done'; finding: FuzzFinding | null };

async function workerMain(): Promise<void> {
  const args = workerData as WorkerArgs;
  const target = (await loadTargets()).find((t) => t.name === args.targetName);
  if (target === undefined) throw new Error(`no fuzz target ${args.targetName}`);
  const finding = fuzzTarget(target, args.seed, args.cases, (done) =>
    parentPort!.postMessage({ kind: 'progress', done } satisfies WorkerMessage),
  );
  parentPort!.postMessage({ kind: 'done', finding } satisfies WorkerMessage);
}

function runInWorker(args: WorkerArgs): Promise<string | null> {
  return new Promise((resolve) => {
    const worker = new Worker(new URL(import.meta.url), {
      workerData: args,
      resourceLimits: { maxOldGenerationSizeMb: 1024 },
    });
    let settled = false;
    let timer = setTimeout(onHang, HANG_MS);
    function settle(result: string | null): void {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      void worker.terminate();
      resolve(result);
    }
    function onHang(): void {
      settle(`hang: no progress for ${HANG_MS / 1000}s (seed ${args.seed})`);
    }
    worker.on('message', (msg: WorkerMessage) => {
      clearTimeout(timer);
      timer = setTimeout(onHang, HANG_MS);
      if (msg.kind === 'done') {
        settle(msg.finding === null ? null : formatFinding(msg.finding));
      }
    });
    worker.on('error', (err) => settle(`worker crashed: ${err.message} (seed ${args.seed})`));
    worker.on('exit', (code) => settle(code === 0 ? 'worker exited early' : `worker exited with ${code}`));
  });
}

function formatFinding(f: FuzzFinding): string {
  return `case ${f.caseIndex} (seed ${f.seed}): ${f.error}\ninput (hex, first 4 KiB): ${f.inputHex}`;
}

async function main(): Promise<number> {
  const cases = Number(process.env.FUZZ_CASES ?? 100_000);
  const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31);
  const only = process.argv[2];
  const targets = (await loadTargets()).filter((t) => only === undefined || t.name === only);
  if (targets.length === 0) {
    console.error('no fuzz targets found');
    return 1;
  }
  console.log(`fuzzing ${targets.length} targets, ${cases} cases each, seed ${seed}`);
  let failures = 0;
  for (const t of targets) {
    const started = Date.now();
    const result = await runInWorker({ targetName: t.name, seed, cases });
    const secs = ((Date.now() - started) / 1000).toFixed(1);
    if (result === null) console.log(`ok   ${t.name}: ${cases} cases in ${secs}s`);
    else {
      failures++;
      console.log(`FAIL ${t.name}: ${result}`);
    }
  }
  console.log(`${targets.length - failures} passed, ${failures} failed`);
  return failures === 0 ? 0 : 1;
}

if (isMainThread) process.exitCode = await main();
else await workerMain();
