/**
 * writeStderrLine (src/fuse/stderr-line.ts) when stderr is a pipe whose
 * reader falls behind: the pipe is non-blocking, so a plain writeSync
 * failed with EAGAIN and, on the FUSE thread, took the mount down (seen
 * with fuse.debug). A child process writes far more than a pipe holds
 * while the test does not read; once the test reads again every line must
 * arrive and the child must exit normally.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { formatLogLine } from '../../../src/fuse/stderr-line.js';
import { repoRoot } from '../../helpers/paths.js';

const LINES = 3000;
const LINE = 'x'.repeat(100);

test('a full stderr pipe is waited for: no EAGAIN, no line lost', async () => {
  const module = pathToFileURL(join(repoRoot, 'dist', 'src', 'fuse', 'stderr-line.js')).href;
  const script = [
    // As in the daemon: the main thread's stderr stream makes the pipe non-blocking.
    "process.stderr.write('');",
    `const { writeStderrLine } = await import(${JSON.stringify(module)});`,
    `for (let i = 0; i < ${LINES}; i++) writeStderrLine(i + ' ${LINE}');`,
  ].join('\n');
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'ignore', 'pipe'] });
  // ~300 KB against a 64 KiB pipe: the child blocks until the stream is read.
  child.stderr.pause();
  await new Promise((r) => setTimeout(r, 300));
  let text = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => (text += chunk));
  child.stderr.resume();
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  assert.equal(code, 0, text.slice(-2000));
  const lines = text.split('\n').filter((l) => l !== '');
  assert.equal(lines.length, LINES);
  assert.equal(lines.at(-1), `${LINES - 1} ${LINE}`);
  assert.ok(!text.includes('dropped'), 'no line was dropped');
});

test('log.format and log.timestamp: plain lines, timed lines, JSON records with a level', () => {
  const at = new Date(Date.UTC(2026, 11, 7, 22, 40, 1, 123));
  assert.equal(formatLogLine('lease: primary', { format: 'text', timestamp: false }, at), 'lease: primary');
  assert.equal(formatLogLine('lease: primary', { format: 'text', timestamp: true }, at), '2026-12-07T22:40:01.123Z lease: primary');
  assert.deepEqual(JSON.parse(formatLogLine('lease: primary', { format: 'json', timestamp: false }, at)), { level: 'INFO', msg: 'lease: primary' });
  assert.deepEqual(JSON.parse(formatLogLine('ERROR: exit status 5', { format: 'json', timestamp: true }, at)), {
    time: '2026-12-07T22:40:01.123Z',
    level: 'ERROR',
    msg: 'ERROR: exit status 5',
  });
  assert.equal(JSON.parse(formatLogLine('FATAL: a.db: WAL commit failed', { format: 'json', timestamp: false }, at)).level, 'ERROR');
  assert.equal(JSON.parse(formatLogLine('lease: WARNING: campaigning although behind', { format: 'json', timestamp: false }, at)).level, 'WARN');
  assert.equal(JSON.parse(formatLogLine('fuse: FATAL a.db: WAL commit failed', { format: 'json', timestamp: false }, at)).level, 'ERROR');
  assert.equal(JSON.parse(formatLogLine('fuse: refused (EACCES): x.db create: read-only replica', { format: 'json', timestamp: false }, at)).level, 'INFO');
  // A line with quotes and a newline stays one JSON line.
  const odd = formatLogLine('say "hi"\nthere', { format: 'json', timestamp: false }, at);
  assert.equal(odd.includes('\n'), false);
  assert.equal(JSON.parse(odd).msg, 'say "hi"\nthere');
});
