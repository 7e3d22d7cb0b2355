import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ExecError, execFromArgs, planExec, runExec, splitShellWords, waitForExit } from '../../../src/cli/exec.js';

describe('exec: shell-word splitting (no shell)', () => {
  test('blanks separate words; quotes and escapes group them', () => {
    assert.deepEqual(splitShellWords('  ls   -l\t/tmp '), ['ls', '-l', '/tmp']);
    assert.deepEqual(splitShellWords(`echo 'a  b' "c \\"d\\" $HOME" e\\ f`), ['echo', 'a  b', 'c "d" $HOME', 'e f']);
    assert.deepEqual(splitShellWords(`x "" ''`), ['x', '', '']);
    assert.deepEqual(splitShellWords(`a"b"'c'd`), ['abcd']);
    assert.deepEqual(splitShellWords(''), []);
  });

  test('unterminated quotes and a trailing backslash are errors', () => {
    assert.throws(() => splitShellWords(`echo "abc`), ExecError);
    assert.throws(() => splitShellWords(`echo 'abc`), ExecError);
    assert.throws(() => splitShellWords(`echo abc\\`), ExecError);
  });

  test('if-candidate entries are skipped on non-candidates; -- args form one re-split command', () => {
    const entries = [
      { cmd: 'migrate up', ifCandidate: true },
      { cmd: 'serve -p 8080', ifCandidate: false },
    ];
    assert.deepEqual(planExec(entries, true), [['migrate', 'up'], ['serve', '-p', '8080']]);
    assert.deepEqual(planExec(entries, false), [['serve', '-p', '8080']]);
    assert.deepEqual(planExec(execFromArgs(['sh', '-c', 'echo hi']), true), [['sh', '-c', 'echo', 'hi']]);
  });
});

describe('exec: supervisor', () => {
  test('all but the last run to completion in order; the last is returned running', async () => {
    const child = await runExec([['true'], ['sh', '-c', 'exit 7']], new AbortController().signal);
    assert.ok(child !== undefined);
    assert.equal(await waitForExit(child), 7);
  });

  test('a failing synchronous command stops the run with its status', async () => {
    await assert.rejects(runExec([['false'], ['sleep', '10']], new AbortController().signal), /exit status 1/);
  });

  test('an unknown program is a start-up error', async () => {
    await assert.rejects(runExec([['/nonexistent/program']], new AbortController().signal), /cannot start/);
  });

  test('a signal ends as 128+n', async () => {
    const child = await runExec([['sleep', '10']], new AbortController().signal);
    child!.kill('SIGTERM');
    assert.equal(await waitForExit(child!), 143);
  });
});
