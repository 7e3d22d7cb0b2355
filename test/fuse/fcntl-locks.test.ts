import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { skipUnless } from '../helpers/prereq.js';
import { assertSameTranscript, targetPrereqs, useTargets } from '../helpers/fs-ops.js';
import { expectSuccess, runPython } from '../helpers/sqlite-client.js';

const skip = skipUnless(['python3-sqlite', ...targetPrereqs()]);

describe('fcntl record locks between processes behave as on the host file system', { skip }, () => {
  const targets = useTargets();

  test('read/write/unlock, splitting and merging, owners, F_GETLK answers, F_SETLKW grant, EINTR and a killed waiter', async () => {
    let reference: { kind: 'plain' | 'mount'; text: string } | null = null;
    for (const t of targets()) {
      const text = expectSuccess(`fcntl-locks.py on ${t.kind}`, await runPython('fcntl-locks.py', [t.dir], { timeoutMs: 120_000 }));
      if (reference === null) {
        // The reference run proves the scenario's own expectations (POSIX on ext4/overlay).
        assert.match(text, /^mismatches 0$/m, `scenario expectations on ${t.kind}:\n${text}`);
        reference = { kind: t.kind, text };
      } else {
        assertSameTranscript('fcntl lock transcript', reference, { kind: t.kind, text });
      }
    }
  });

  test(
    'an F_SETLKW that would deadlock fails with EDEADLK',
    async () => {
      let reference: { kind: 'plain' | 'mount'; text: string } | null = null;
      for (const t of targets()) {
        const dir = join(t.dir, 'deadlock');
        mkdirSync(dir);
        const res = await runPython('fcntl-locks.py', [dir, 'deadlock'], { timeoutMs: 60_000 });
        const text = expectSuccess(`fcntl-locks.py deadlock on ${t.kind}`, res);
        if (reference === null) {
          assert.match(text, /^mismatches 0$/m, `scenario expectations on ${t.kind}:\n${text}`);
          reference = { kind: t.kind, text };
        } else {
          assertSameTranscript('fcntl deadlock transcript', reference, { kind: t.kind, text });
        }
      }
    },
  );
});
