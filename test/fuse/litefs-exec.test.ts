import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLiteFS } from '../helpers/litefs-daemon.js';
import { skipUnless } from '../helpers/prereq.js';

/** The exec supervisor of `litefs mount` (ref §12.4). */
const skip = skipUnless(['root', 'fuse']);

describe('litefs mount: exec', { skip }, () => {
  let work: string;
  before(() => {
    work = mkdtempSync(join(tmpdir(), 'litefs-exec-'));
  });
  after(() => {
    if (work !== undefined) rmSync(work, { recursive: true, force: true });
  });

  test('exec runs after the mount is ready, in order; the last one\'s exit code becomes litefs\'s', async () => {
    const mounts = join(work, 'mounts');
    const daemon = await startLiteFS({
      exec: [`sh -c "echo first > ${work}/first"`, `sh -c "cat /proc/self/mountinfo > ${mounts}; sleep 1; exit 3"`],
    });
    try {
      const code = await Promise.race([daemon.exited(), new Promise((r) => setTimeout(() => r('timeout'), 15_000))]);
      assert.equal(code, 3, daemon.output());
      assert.equal(readFileSync(join(work, 'first'), 'utf8'), 'first\n');
      assert.ok(readFileSync(mounts, 'utf8').includes(` ${daemon.mnt} `), 'the mount was listed when exec ran');
      assert.ok(!readFileSync('/proc/self/mountinfo', 'utf8').includes(` ${daemon.mnt} `), 'unmounted after the exit');
    } finally {
      await daemon.close().catch(() => undefined);
    }
  });

  test('a failing start-up command stops litefs with exit 1 before the last one runs', async () => {
    const daemon = await startLiteFS({ exec: [`sh -c "sleep 1; exit 5"`, `sh -c "echo ran > ${work}/never"`] });
    try {
      const code = await Promise.race([daemon.exited(), new Promise((r) => setTimeout(() => r('timeout'), 15_000))]);
      assert.equal(code, 1, daemon.output());
      assert.match(daemon.output(), /exit status 5/);
      assert.equal(existsSync(join(work, 'never')), false);
    } finally {
      await daemon.close().catch(() => undefined);
    }
  });

  test('exit-on-error false: a failing start-up command is logged and litefs stays up until a signal; log.format json shapes every line', async () => {
    const daemon = await startLiteFS({
      exec: [`sh -c "exit 5"`, `sh -c "echo ran > ${work}/never-either"`],
      topLines: ['exit-on-error: false', 'log:', '  format: json', '  timestamp: true'],
    });
    try {
      for (let i = 0; i < 150 && !daemon.output().includes('exit-on-error is false'); i++) await new Promise((r) => setTimeout(r, 100));
      assert.ok(daemon.running, daemon.output());
      assert.ok(readFileSync('/proc/self/mountinfo', 'utf8').includes(` ${daemon.mnt} `), 'still mounted');
      assert.equal((await fetch(`${daemon.httpURL}/info`)).status, 200);
      assert.equal(existsSync(join(work, 'never-either')), false);
      const lines = daemon.output().split('\n').filter((l) => l !== '' && l !== `mounted ${daemon.mnt}`);
      const records = lines.map((l) => JSON.parse(l) as { time?: string; level?: string; msg?: string });
      for (const r of records) {
        assert.match(r.time ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
        assert.equal(typeof r.msg, 'string');
      }
      const error = records.find((r) => r.msg?.includes('exit status 5'));
      assert.equal(error?.level, 'ERROR', daemon.output());
      assert.ok(records.some((r) => r.level === 'INFO' && r.msg?.startsWith('http server listening on')));
      await daemon.stop(); // requires exit 0 and the mount gone
    } finally {
      await daemon.close();
    }
  });

  test('SIGTERM to litefs reaches the exec\'d process; litefs exits 0 after it', async () => {
    const marker = join(work, 'term');
    const daemon = await startLiteFS({
      exec: [`sh -c 'trap "echo got > ${marker}; exit 0" TERM; while :; do sleep 0.1; done'`],
    });
    try {
      await new Promise((r) => setTimeout(r, 500));
      await daemon.stop(); // requires exit 0 and the mount gone
      assert.equal(readFileSync(marker, 'utf8'), 'got\n');
    } finally {
      await daemon.close();
    }
  });
});
