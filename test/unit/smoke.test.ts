import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { fixture } from '../helpers/paths.js';

test('fixtures are part of the repository', () => {
  assert.ok(existsSync(fixture('ltx', 'README.md')));
});
