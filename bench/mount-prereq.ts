/**
 * What the benchmarks that start `litefs mount` daemons need: /dev/fuse,
 * root, a build, python3 with its sqlite3 module, and any `tools` more.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cliMain } from './fuse/paths.js';

/** A command that must run (`cmd args`), and what to call it when it does not. */
export type Tool = readonly [cmd: string, args: readonly string[], what: string];

const PYTHON_SQLITE: Tool = ['python3', ['-c', 'import sqlite3'], 'python3 with its sqlite3 module'];

/** Why the benchmark cannot run on this machine, or null. */
export function mountBenchBlocker(tools: readonly Tool[] = []): string | null {
  if (!existsSync('/dev/fuse')) return 'no /dev/fuse on this machine';
  if (process.getuid?.() !== 0) return 'mounting needs root (or CAP_SYS_ADMIN)';
  if (!existsSync(cliMain)) return `${cliMain} not built (npm run build)`;
  for (const [cmd, args, what] of [PYTHON_SQLITE, ...tools]) {
    try {
      execFileSync(cmd, [...args], { stdio: 'ignore' });
    } catch {
      return `${what} is needed`;
    }
  }
  return null;
}
