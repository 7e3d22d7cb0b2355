/**
 * `litefs run`: flags, -if-candidate, -promote (with its wait), the exit code
 * and signal passthrough. The node is the in-test FakeNode behind the real
 * ApiServer on 127.0.0.1; CMD is a small `sh -c` script.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { FlagError } from '../../../src/cli/flags.js';
import { runRun } from '../../../src/cli/run.js';
import { ApiServer } from '../../../src/http/server.js';
import { FakeNode } from '../http/fake-node.js';
import { repoRoot } from '../../helpers/paths.js';

const CLI = join(repoRoot, 'dist', 'src', 'cli', 'main.js');

/**
 * A FakeNode whose /promote works: it becomes primary `promoteAfterMs` later
 * (never, if undefined); and whose HALT locks for local programs are
 * recorded in `halts` (refused with `haltRefusal` when set).
 */
class PromotableNode extends FakeNode {
  promoteAfterMs: number | undefined = 200;
  promotions = 0;
  readonly halts: string[] = [];
  haltRefusal: string | undefined;

  async holdHaltLock(name: string): Promise<() => Promise<void>> {
    if (this.haltRefusal !== undefined) throw new Error(this.haltRefusal);
    this.halts.push(`held ${name}`);
    return async () => {
      this.halts.push(`released ${name}`);
    };
  }

  override async promote(): Promise<void> {
    if (!this.candidate) return super.promote();
    this.promotions++;
    const ms = this.promoteAfterMs;
    if (ms !== undefined) setTimeout(() => (this.isPrimary = true), ms);
  }
}

describe('litefs run', () => {
  let node: PromotableNode;
  let server: ApiServer;
  let url: string;
  let dir: string;

  before(async () => {
    node = new PromotableNode(0x1122334455667788n, 'LFSC00112233445566AA');
    server = new ApiServer({ node, registry: new Registry() });
    const { port } = await server.listen(0, '127.0.0.1');
    url = `http://127.0.0.1:${port}`;
    dir = mkdtempSync(join(tmpdir(), 'litefs-run-'));
  });
  after(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A command that leaves `marker` behind when it runs. */
  function touching(marker: string): string[] {
    return ['sh', '-c', 'touch "$0"', join(dir, marker)];
  }

  function reset(state: Partial<Pick<PromotableNode, 'isPrimary' | 'candidate' | 'promoteAfterMs'>>): void {
    node.isPrimary = state.isPrimary ?? true;
    node.candidate = state.candidate ?? true;
    node.promoteAfterMs = 'promoteAfterMs' in state ? state.promoteAfterMs : 200;
    node.promotions = 0;
  }

  test('flags: no command is a usage error; words without --, and -promote with -with-halt-lock-on are refused', async () => {
    await assert.rejects(runRun([]), FlagError);
    await assert.rejects(runRun(['-url', url]), FlagError);
    await assert.rejects(runRun(['-nope', '--', 'true']), FlagError);
    await assert.rejects(runRun(['true']), { message: "too many arguments, specify a '--' to specify an exec command" });
    await assert.rejects(runRun(['-promote', '-with-halt-lock-on', '/litefs/db', '--', 'true']), {
      message: 'cannot specify both -promote & -with-halt-lock-on',
    });
  });

  test('-with-halt-lock-on: CMD runs while the node holds the lock of the named database, released after it; a refusal runs nothing', async () => {
    node.halts.length = 0;
    const script = 'touch "$0"; exit 4';
    assert.equal(await runRun(['-url', url, '-with-halt-lock-on', '/litefs/app.db', '--', 'sh', '-c', script, join(dir, 'halted')]), 4);
    assert.ok(existsSync(join(dir, 'halted')));
    // The release happens when the server sees the request closed.
    for (let i = 0; i < 200 && node.halts.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(node.halts, ['held app.db', 'released app.db']);
    node.haltRefusal = 'no primary available';
    try {
      await assert.rejects(runRun(['-url', url, '-with-halt-lock-on', '/litefs/app.db', '--', ...touching('refused')]), {
        message: 'cannot acquire halt lock on app.db: acquire halt lock: no primary available',
      });
    } finally {
      node.haltRefusal = undefined;
    }
    assert.equal(existsSync(join(dir, 'refused')), false);
  });

  test('the CLI: usage exits 2, refusals exit 1 with ERROR:', () => {
    assert.equal(spawnSync(process.execPath, [CLI, 'run'], { encoding: 'utf8' }).status, 2);
    const r = spawnSync(process.execPath, [CLI, 'run', '-url', 'http://127.0.0.1:1', '-with-halt-lock-on', '/litefs/db', '--', 'true'], { encoding: 'utf8' });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^ERROR: cannot acquire halt lock on db: connect ECONNREFUSED 127\.0\.0\.1:1\n$/);
  });

  test('without -promote or -if-candidate no node is needed; the exit code is CMD\'s', async () => {
    assert.equal(await runRun(['-url', 'http://127.0.0.1:1', '--', 'sh', '-c', 'exit 3']), 3);
    assert.equal(await runRun(['--', 'true']), 0);
    const r = spawnSync(process.execPath, [CLI, 'run', '--', 'sh', '-c', 'echo out; echo err >&2; exit 42'], { encoding: 'utf8' });
    assert.deepEqual([r.status, r.stdout, r.stderr], [42, 'out\n', 'err\n']);
  });

  test('a command that cannot start is an error', async () => {
    await assert.rejects(runRun(['--', join(dir, 'no-such-program')]), /cannot start .*no-such-program/);
  });

  test('-if-candidate on a node that is not a candidate: LiteFS\'s notice, exit 0, CMD not run', async () => {
    reset({ candidate: false, isPrimary: false });
    const lines: string[] = [];
    const code = await runRun(['-url', url, '-if-candidate', '--', ...touching('skipped')], { stderr: (l) => lines.push(l) });
    assert.equal(code, 0);
    assert.deepEqual(lines, ['node is not a candidate, skipping execution']);
    assert.equal(existsSync(join(dir, 'skipped')), false);
    // A candidate runs it.
    reset({ candidate: true, isPrimary: false });
    assert.equal(await runRun(['-url', url, '-if-candidate', '--', ...touching('ran')], { stderr: () => {} }), 0);
    assert.equal(existsSync(join(dir, 'ran')), true);
  });

  test('-promote asks the node, waits until /info says primary, then runs CMD and passes its exit code', async () => {
    reset({ isPrimary: false, promoteAfterMs: 300 });
    const lines: string[] = [];
    const code = await runRun(['-url', url, '-promote', '-v', '--', 'sh', '-c', 'exit 5'], { stderr: (l) => lines.push(l), promotePollMs: 20 });
    assert.equal(code, 5);
    assert.equal(node.promotions, 1);
    assert.equal(node.isPrimary, true);
    assert.deepEqual(lines, ['fetching node metadata', 'promoting node to primary', 'promotion successful']);
  });

  test('-promote on the primary skips the promotion; without -v nothing is logged', async () => {
    reset({ isPrimary: true });
    const lines: string[] = [];
    assert.equal(await runRun(['-url', url, '-promote', '--', 'true'], { stderr: (l) => lines.push(l) }), 0);
    assert.equal(node.promotions, 0);
    assert.deepEqual(lines, []);
  });

  test('-promote that never makes the node primary times out without running CMD', async () => {
    reset({ isPrimary: false, promoteAfterMs: undefined });
    await assert.rejects(
      runRun(['-url', url, '-promote', '--', ...touching('never')], { promoteWaitMs: 300, promotePollMs: 20, stderr: () => {} }),
      { message: 'node is not primary 300 ms after the promotion request' },
    );
    assert.equal(node.promotions, 1);
    assert.equal(existsSync(join(dir, 'never')), false);
  });

  test('-promote on a node that is not a candidate fails with the node\'s 409 message', async () => {
    reset({ isPrimary: false, candidate: false });
    await assert.rejects(runRun(['-url', url, '-promote', '--', ...touching('nc')], { stderr: () => {} }), { status: 409, message: 'node is not a candidate' });
    assert.equal(existsSync(join(dir, 'nc')), false);
  });

  test('signals sent to litefs reach CMD, whose exit code litefs returns', async () => {
    // Its own process group, so that cleanup also ends CMD if litefs died without forwarding (an orphan would hold our pipes open).
    const child = spawn(process.execPath, [CLI, 'run', '--', 'sh', '-c', 'trap "exit 7" TERM; echo ready; while :; do sleep 0.05; done'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    try {
      let out = '';
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          if (out.includes('ready')) resolve();
        });
        child.once('exit', (code) => reject(new Error(`exited early with ${code}: ${out}`)));
      });
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      child.kill('SIGTERM');
      assert.equal(await exited, 7);
    } finally {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // The group is gone: nothing left to end.
      }
    }
  });
});
