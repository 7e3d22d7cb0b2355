import { describe, test } from 'node:test';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { skipUnless } from '../helpers/prereq.js';
import { assertSameTranscript, targetPrereqs, useTargets } from '../helpers/fs-ops.js';
import { expectSuccess, runChild, runPython } from '../helpers/sqlite-client.js';
import type { Target, TargetKind } from '../helpers/mount.js';

/**
 * The same seeded random operations (test/programs/fs-ops.py) on the mount
 * and on a plain folder must give the same per-operation results and the same
 * final bytes; hard links and symlinks included. A fresh base seed each run
 * explores new sequences; set LITEFS_FSOPS_SEED to replay one printed in a
 * failure. The two small scenarios at the end are regression tests for gaps
 * the random runs once found.
 */
const RUNS = 3;
const OPS_PER_RUN = 4000;
const CACHED_RUNS = 2;
const baseSeed = Number(process.env.LITEFS_FSOPS_SEED ?? Math.floor(Math.random() * 1e9));

const skip = skipUnless(['python3-sqlite', ...targetPrereqs()]);

/** Runs one seed on every target and compares each transcript with the first (plain) one. */
async function differential(targets: Target[], seed: number, replay: string): Promise<void> {
  let reference: { kind: TargetKind; text: string } | null = null;
  for (const t of targets) {
    const dir = join(t.dir, `seed-${seed}`);
    mkdirSync(dir);
    const res = await runPython('fs-ops.py', [dir, String(seed), String(OPS_PER_RUN)], { timeoutMs: 120_000 });
    const text = expectSuccess(`fs-ops.py seed ${seed} on ${t.kind}`, res);
    if (reference === null) reference = { kind: t.kind, text };
    else assertSameTranscript(`fs-ops.py seed ${seed} (replay this test with ${replay})`, reference, { kind: t.kind, text });
  }
}

/** Runs a small python script in a fresh folder on every target; outputs (or the error) must match. */
async function sameOutput(targets: Target[], name: string, script: string): Promise<void> {
  let reference: { kind: TargetKind; text: string } | null = null;
  for (const t of targets) {
    const dir = join(t.dir, name);
    mkdirSync(dir);
    const res = await runChild('python3', ['-c', script, dir]);
    const lastErrorLine = res.stderr.trim().split('\n').pop() ?? '';
    const text = res.status === 0 ? res.stdout : `${res.stdout}${lastErrorLine}`;
    if (reference === null) reference = { kind: t.kind, text: expectSuccess(`${name} on ${t.kind}`, res) };
    else assertSameTranscript(name, reference, { kind: t.kind, text });
  }
}

describe('random file operations give the same results on the mount as on a plain folder', { skip }, () => {
  const targets = useTargets();

  for (let run = 0; run < RUNS; run++) {
    test(`run ${run + 1}/${RUNS}: ${OPS_PER_RUN} operations, identical results and final tree`, async () => {
      const seed = baseSeed + run;
      await differential(targets(), seed, `LITEFS_FSOPS_SEED=${baseSeed}`);
    });
  }

  test(
    'a folder removed while held open and made again accepts new files',
    async () => {
      const script = [
        'import os, sys',
        'd = sys.argv[1]',
        'os.mkdir(d + "/x"); fd = os.open(d + "/x", os.O_RDONLY)',
        'os.rmdir(d + "/x"); os.mkdir(d + "/x")',
        'os.close(os.open(d + "/x/f", os.O_CREAT | os.O_RDWR, 0o644))',
        'print(sorted(os.listdir(d + "/x")))',
        'os.close(fd)',
      ].join('\n');
      await sameOutput(targets(), 'rmdir-held', script);
    },
  );

  test(
    'fstat of an open file after unlink and after being renamed over answers as on the host',
    async () => {
      const script = [
        'import os, sys',
        'd = sys.argv[1]',
        'a = os.open(os.path.join(d, "a"), os.O_RDWR | os.O_CREAT, 0o644); os.write(a, b"0123456789")',
        'b = os.open(os.path.join(d, "b"), os.O_RDWR | os.O_CREAT, 0o644); os.write(b, b"xyz")',
        'os.unlink(os.path.join(d, "a"))',
        'print("unlinked", os.fstat(a).st_size, os.fstat(a).st_nlink)',
        'c = os.open(os.path.join(d, "c"), os.O_RDWR | os.O_CREAT, 0o644)',
        'os.rename(os.path.join(d, "c"), os.path.join(d, "b"))',
        'print("replaced", os.fstat(b).st_size, os.fstat(b).st_nlink)',
        'os.ftruncate(a, 4); print("truncated", os.fstat(a).st_size)',
      ].join('\n');
      await sameOutput(targets(), 'orphans', script);
    },
  );
});

describe('random file operations on a mount with kernel caching give the same results', { skip }, () => {
  // Attribute, entry and negative-entry caching plus keep_cache: the daemon
  // must keep the kernel's caches right (sizes after writes and truncates,
  // names after renames and unlinks) or results diverge.
  const targets = useTargets({ attrTimeout: 5, entryTimeout: 5, negativeTimeout: 5, keepCache: true });

  for (let run = 0; run < CACHED_RUNS; run++) {
    test(`cached run ${run + 1}/${CACHED_RUNS}: ${OPS_PER_RUN} operations, identical results and final tree`, async () => {
      const seed = baseSeed + RUNS + run;
      await differential(targets(), seed, `LITEFS_FSOPS_SEED=${baseSeed}`);
    });
  }
});
