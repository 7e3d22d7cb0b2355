import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixture, repoRoot } from '../../helpers/paths.js';

const CLI = join(repoRoot, 'dist', 'src', 'cli', 'main.js');
const LITEFS_LTX = fixture(
  'ltx', 'litefs-v0.5.11', 'testdata', 'store', 'open-and-write-snapshot', 'dbs', 'sqlite.db', 'ltx',
  '000000000000000d-000000000000000d.ltx',
);

function litefs(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('litefs version prints one line and exits 0', () => {
  const r = litefs('version');
  assert.equal(r.status, 0);
  assert.match(r.stdout, /^litefs-ts v\d+\.\d+\.\d+ \(LiteFS v0\.5\.11 compatible\)\n$/);
});

test('litefs with no command prints usage and exits 2; an unknown command exits 1', () => {
  assert.equal(litefs().status, 2);
  const r = litefs('frobnicate');
  assert.equal(r.status, 1);
  assert.match(r.stderr, /litefs frobnicate: unknown command/);
});

test('ltx dump shows header, trailer and page checksums of a LiteFS-written file', () => {
  const r = litefs('ltx', 'dump', LITEFS_LTX);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /Min TXID: +000000000000000d/);
  assert.match(r.stdout, /Post-apply: +fe3831a381c602b9/);
  assert.match(r.stdout, /File checksum: +9496a29358326fb5/);
  assert.match(r.stdout, /Pages \(3\):\n +1 +[0-9a-f]{16}\n +7 +[0-9a-f]{16}\n +8 +[0-9a-f]{16}/);
});

test('ltx verify exits 0 for every valid fixture', () => {
  for (const name of ['v4-snapshot-40x4096-lz4-multiblock.ltx', 'v5-delete-commit0-lz4.ltx', 'v6-compact-output.ltx']) {
    const r = litefs('ltx', 'verify', fixture('ltx', 'ltx-v0.3.13-generated', name));
    assert.equal(r.status, 0, `${name}: ${r.stderr}`);
    assert.equal(r.stdout, '');
  }
});

test('ltx verify names the failed rule in one line and exits 1', () => {
  const dir = mkdtempSync(join(tmpdir(), 'litefs-ltx-'));
  try {
    const bad = join(dir, 'flipped.ltx');
    const bytes = readFileSync(LITEFS_LTX);
    bytes[200] = bytes[200]! ^ 0xff;
    writeFileSync(bad, bytes);
    const r = litefs('ltx', 'verify', bad);
    assert.equal(r.status, 1);
    assert.equal(r.stderr.trim().split('\n').length, 1);
    assert.match(r.stderr, /flipped\.ltx: .+\[[a-z0-9-]+\]$/m);

    const reject = litefs('ltx', 'verify', fixture('ltx', 'ltx-python-crafted-lz4-variants', 'reject-extra-byte-after-end-marker.ltx'));
    assert.equal(reject.status, 1);
    assert.match(reject.stderr, /expected lz4 end frame/);

    assert.equal(litefs('ltx', 'verify', join(dir, 'missing.ltx')).status, 1);
    assert.equal(litefs('ltx', 'bogus', bad).status, 2);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
