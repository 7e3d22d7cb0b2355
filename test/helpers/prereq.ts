import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/**
 * Tests that need root, /dev/fuse, the sqlite3 CLI or etcd call this first.
 * Outside CI a missing prerequisite skips the test with the reason; with
 * CI=true it fails, so a broken CI machine can never pass by skipping.
 */
export function missingPrereqs(needs: readonly Prereq[]): string[] {
  const missing: string[] = [];
  for (const need of needs) {
    const why = PREREQ_CHECKS[need]();
    if (why !== null) missing.push(why);
  }
  return missing;
}

export type Prereq = 'root' | 'fuse' | 'sqlite3' | 'python3-sqlite' | 'etcd';

const PREREQ_CHECKS: Record<Prereq, () => string | null> = {
  root: () => (process.getuid?.() === 0 ? null : 'needs root'),
  fuse: () => (existsSync('/dev/fuse') ? null : 'needs /dev/fuse'),
  sqlite3: () => (commandWorks('sqlite3', ['-version']) ? null : 'needs the sqlite3 CLI'),
  'python3-sqlite': () =>
    commandWorks('python3', ['-c', 'import sqlite3']) ? null : "needs python3's sqlite3 module",
  etcd: () => (commandWorks('etcd', ['--version']) ? null : 'needs etcd (Debian etcd-server)'),
};

function commandWorks(cmd: string, args: string[]): boolean {
  const res = spawnSync(cmd, args, { stdio: 'ignore' });
  return res.status === 0;
}

/**
 * Returns a skip reason (string) when prerequisites are missing outside CI,
 * false when everything is present, and throws under CI=true.
 */
export function skipUnless(needs: readonly Prereq[]): string | false {
  const missing = missingPrereqs(needs);
  if (missing.length === 0) return false;
  const reason = missing.join(', ');
  if (process.env.CI === 'true') {
    throw new Error(`prerequisite missing under CI: ${reason}`);
  }
  return reason;
}
