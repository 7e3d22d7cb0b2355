#!/usr/bin/env node
// Runs the compiled test files under dist/test/<kind>/ with node's built-in
// test runner. Usage: node scripts/run-tests.mjs [kind...]  (default: all kinds)
// Unit tests run in parallel; suites that mount file systems or start daemons
// run one file at a time so they do not compete for the machine's two cores.
import { readFileSync, readdirSync, statSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const KINDS = ['unit', 'fuse', 'cluster', 'chaos'];
const PARALLEL = new Set(['unit']);
const root = new URL('..', import.meta.url).pathname;
const requested = process.argv.slice(2);
const kinds = requested.length > 0 ? requested : KINDS;

function findTests(dir) {
  if (!existsSync(dir)) return [];
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...findTests(p));
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

// Mounts that exist before the run (say, left by an earlier run whose
// processes were killed) are not this run's leaks: the teardown tests
// (test/helpers/mount.ts leakedMounts) leave them out.
const mountsBefore = readFileSync('/proc/self/mountinfo', 'utf8')
  .split('\n')
  .filter((line) => line !== '')
  .map((line) => line.split(' ')[4].replace(/\\([0-7]{3})/g, (_, oct) => String.fromCharCode(parseInt(oct, 8))));
process.env.LITEFS_TEST_MOUNTS_BEFORE = JSON.stringify(mountsBefore);
if (mountsBefore.some((m) => m.includes('/litefs-fuse-'))) {
  console.log(`note: test mounts from an earlier run are present and are not counted as leaks: ${mountsBefore.filter((m) => m.includes('/litefs-fuse-')).join(' ')}`);
}

let failed = false;
for (const kind of kinds) {
  if (!KINDS.includes(kind)) {
    console.error(`unknown test kind: ${kind} (one of ${KINDS.join(', ')})`);
    process.exit(2);
  }
  const files = findTests(join(root, 'dist', 'test', kind));
  if (files.length === 0) continue;
  console.log(`\n=== ${kind} tests (${files.length} files) ===`);
  const concurrency = PARALLEL.has(kind) ? 2 : 1;
  const res = spawnSync(
    process.execPath,
    // A hung test fails after 5 minutes instead of holding CI until its 90-minute limit.
    ['--test', `--test-concurrency=${concurrency}`, '--test-timeout=300000', '--test-reporter=spec', ...files],
    { stdio: 'inherit', cwd: root },
  );
  if (res.status !== 0) failed = true;
}
process.exit(failed ? 1 : 0);
