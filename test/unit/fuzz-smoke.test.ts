import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fuzzTarget } from '../fuzz/engine.js';
import { loadTargets } from '../fuzz/targets.js';

// CI runs a fixed, seeded share of every fuzz target; `npm run fuzz` runs the
// full 100,000 cases per target with a fresh seed.
const CI_CASES = Number(process.env.FUZZ_CI_CASES ?? 3000);
const CI_SEED = 20261124;

const targets = await loadTargets();

test('fuzz targets are registered', () => {
  assert.ok(targets.length > 0, 'no fuzz targets in test/fuzz/targets');
});

for (const target of targets) {
  test(`fuzz ${target.name}: ${CI_CASES} seeded cases give a typed error or a result`, () => {
    const finding = fuzzTarget(target, CI_SEED, CI_CASES);
    assert.equal(finding, null, finding === null ? '' : `case ${finding.caseIndex}: ${finding.error}`);
  });
}
