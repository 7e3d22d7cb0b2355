import { spawnSync } from 'node:child_process';
import { closeSync, copyFileSync, fstatSync, ftruncateSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { fixture } from '../../helpers/paths.js';
import type { PositionalReader } from '../../../src/sqlite/positional.js';
import type { RollbackTarget } from '../../../src/sqlite/rollback.js';

/** Reads a fixture under test/fixtures/ltx/. */
export function ltxFixture(...parts: string[]): Buffer {
  return readFileSync(fixture('ltx', ...parts));
}

export function sqliteFixturePath(...parts: string[]): string {
  return fixture('ltx', 'sqlite-generated', ...parts);
}

/** Runs `fn` with a fresh temporary directory, removed afterwards. */
export function withTempDir<T>(fn: (dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'litefs-sqlite-test-'));
  try {
    return fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function withTempDirAsync<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'litefs-sqlite-test-'));
  try {
    return await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Copies fixture files into `dir` (fixtures are never opened in place). */
export function copyFixtures(dir: string, folder: string, names: string[]): void {
  for (const name of names) copyFileSync(sqliteFixturePath(folder, name), join(dir, name));
}

/** Runs the sqlite3 CLI in a child process and returns its trimmed stdout. */
export function sqlite3(dbPath: string, sql: string): string {
  const res = spawnSync('sqlite3', [dbPath, sql], { encoding: 'utf8' });
  assert.equal(res.status, 0, `sqlite3 ${dbPath} "${sql}" failed: ${res.stderr}`);
  return res.stdout.trim();
}

/** PositionalReader and RollbackTarget over an open file descriptor. */
export function fdFile(fd: number): PositionalReader & RollbackTarget {
  return {
    readAt: (buf, offset) => readSync(fd, buf, 0, buf.length, offset),
    size: () => fstatSync(fd).size,
    writeAt: (data, offset) => {
      writeSync(fd, data, 0, data.length, offset);
    },
    truncate: (size) => ftruncateSync(fd, size),
  };
}

export function withFd<T>(path: string, flags: string, fn: (fd: number) => T): T {
  const fd = openSync(path, flags);
  try {
    return fn(fd);
  } finally {
    closeSync(fd);
  }
}

export function hex(n: number): string {
  return n.toString(16).padStart(8, '0');
}
