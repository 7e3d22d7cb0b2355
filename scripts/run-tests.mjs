#!/usr/bin/env node
// Runs the compiled test files under dist/test/<kind>/ with node's built-in
// test runner. Usage: node scripts/run-tests.mjs [kind...]  (default: all kinds)
// Unit tests run in parallel; suites that mount file systems or start daemons
// run one file at a time so they do not compete for the machine's two cores.
import { readdirSync, statSync, existsSync } from 'node:fs';
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
    ['--test', `--test-concurrency=${concurrency}`, '--test-reporter=spec', ...files],
    { stdio: 'inherit', cwd: root },
  );
  if (res.status !== 0) failed = true;
}
process.exit(failed ? 1 : 0);
