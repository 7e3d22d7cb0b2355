import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { lastJsonLine, numberField, runProgram } from './child.js';
import type { CleanupStack } from './cleanup.js';
import type { Suite } from './suite.js';

/**
 * The per-request workloads, each a tight loop in bench/programs/fuse-requests.c:
 * fstat (one GETATTR with attr timeout 0), lock (F_SETLK lock + unlock of one
 * byte: two SETLK when the file system takes POSIX locks), stat of a path
 * (LOOKUP + GETATTR with entry and attr timeouts 0).
 */
export const REQUEST_OPS = ['fstat', 'lock', 'stat'] as const;
export type RequestOp = (typeof REQUEST_OPS)[number];

export interface RequestSettings {
  durationMs: number;
  /** Rounds per op; the fastest counts. */
  rounds: number;
}

const FILE_NAME = 'request-target.dat';

/** µs per operation for each op, the client pinned to `cpu` if given. */
export function requestSuite(
  name: string,
  program: string,
  settings: RequestSettings,
  cpu: number | undefined,
  cleanup: CleanupStack,
): Suite {
  const runOp = async (dir: string, op: RequestOp): Promise<string> =>
    runProgram(program, [op, join(dir, FILE_NAME), String(settings.durationMs)], {
      timeoutMs: settings.durationMs + 30_000,
      cpu,
      cleanup,
    });
  return {
    name,
    prepare: async (dir) => {
      writeFileSync(join(dir, FILE_NAME), Buffer.alloc(4096));
      // One untimed run of each op first: a freshly started daemon's request
      // path is not JIT-compiled yet (ours: the first 150 ms after a pinned
      // mount cost ~24 µs per fstat, ~12 µs from then on), and the figures are
      // meant to describe a mount that has been serving for a while.
      for (const op of REQUEST_OPS) await runOp(dir, op);
    },
    measurements: REQUEST_OPS.map((op) => ({
      ids: [op],
      better: 'lower' as const,
      rounds: settings.rounds,
      run: async (dir: string) => {
        const result = lastJsonLine(await runOp(dir, op));
        return [numberField(result, 'ns') / numberField(result, 'ops') / 1000];
      },
    })),
  };
}
