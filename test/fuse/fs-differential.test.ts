import { describe, test } from 'node:test';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { skipUnless } from '../helpers/prereq.js';
import { assertSameTranscript, targetPrereqs, useTargets } from '../helpers/fs-ops.js';
import { expectSuccess, runPython } from '../helpers/sqlite-client.js';
import type { TargetKind } from '../helpers/mount.js';

/**
 * The same seeded random operations (test/programs/fs-ops.py) on the mount
 * and on a plain folder must give the same per-operation results and the same
 * final bytes. A fresh base seed each run explores new sequences; set
 * LITEFS_FSOPS_SEED to replay one printed in a failure.
 */
const RUNS = 3;
const OPS_PER_RUN = 4000;
const baseSeed = Number(process.env.LITEFS_FSOPS_SEED ?? Math.floor(Math.random() * 1e9));

const skip = skipUnless(['python3-sqlite', ...targetPrereqs()]);

describe('random file operations give the same results on the mount as on a plain folder', { skip }, () => {
  const targets = useTargets();

  for (let run = 0; run < RUNS; run++) {
    test(`run ${run + 1}/${RUNS}: ${OPS_PER_RUN} operations, identical results and final tree`, async () => {
      const seed = baseSeed + run;
      let reference: { kind: TargetKind; text: string } | null = null;
      for (const t of targets()) {
        const dir = join(t.dir, `seed-${seed}`);
        mkdirSync(dir);
        const res = await runPython('fs-ops.py', [dir, String(seed), String(OPS_PER_RUN)], { timeoutMs: 120_000 });
        const text = expectSuccess(`fs-ops.py seed ${seed} on ${t.kind}`, res);
        if (reference === null) reference = { kind: t.kind, text };
        else assertSameTranscript(`fs-ops.py seed ${seed} (replay: LITEFS_FSOPS_SEED=${seed} with run 1)`, reference, { kind: t.kind, text });
      }
    });
  }
});
