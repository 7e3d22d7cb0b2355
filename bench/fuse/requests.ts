import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Cell, figure, missing } from './cell.js';
import { lastJsonLine, numberField, runProgram } from './child.js';
import { type CleanupStack, errorText } from './cleanup.js';

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
  /** Each op runs this many times; the fastest counts, since load from other processes only ever adds time. */
  repeats: number;
}

/** µs per operation for each op in `dir`, the client pinned to `cpu` if given. */
export async function measureRequests(
  program: string,
  dir: string,
  settings: RequestSettings,
  cpu: number | undefined,
  cleanup: CleanupStack,
): Promise<Map<RequestOp, Cell>> {
  const file = join(dir, 'request-target.dat');
  writeFileSync(file, Buffer.alloc(4096));
  const out = new Map<RequestOp, Cell>();
  for (const op of REQUEST_OPS) {
    try {
      let best = Infinity;
      for (let i = 0; i < settings.repeats; i++) {
        const stdout = await runProgram(program, [op, file, String(settings.durationMs)], {
          timeoutMs: settings.durationMs + 30_000,
          cpu,
          cleanup,
        });
        const result = lastJsonLine(stdout);
        best = Math.min(best, numberField(result, 'ns') / numberField(result, 'ops') / 1000);
      }
      out.set(op, figure(best));
    } catch (err) {
      out.set(op, missing(errorText(err)));
    }
  }
  return out;
}
