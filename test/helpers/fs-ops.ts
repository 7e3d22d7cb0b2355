import { after, before } from 'node:test';
import { openTarget, targetKinds, type PassthroughOptions, type Target, type TargetKind } from './mount.js';

/**
 * Shared scaffolding for the FUSE suite's comparative scenarios: every
 * scenario runs once per target (a plain folder first, as the reference,
 * then the passthrough mount), and the transcripts must be identical.
 */

/**
 * Opens one target of each kind before the enclosing suite's tests and
 * closes them after (a mount is stopped and checked gone even if a test
 * failed). Returns a getter, valid inside tests.
 */
export function useTargets(options: PassthroughOptions = {}): () => Target[] {
  const kinds = targetKinds();
  const targets: Target[] = [];
  before(async () => {
    for (const kind of kinds) targets.push(await openTarget(kind, options));
  });
  after(async () => {
    const errors: unknown[] = [];
    for (const t of targets.splice(0)) {
      try {
        await t.close();
      } catch (err) {
        errors.push(err);
      }
    }
    if (errors.length > 0) throw errors[0];
  });
  return () => {
    if (targets.length !== kinds.length) throw new Error('targets are not open (before hook failed?)');
    return targets;
  };
}

/** The prerequisites a scenario needs on top of its own for the selected targets. */
export function targetPrereqs(): ('root' | 'fuse')[] {
  return targetKinds().includes('mount') ? ['root', 'fuse'] : [];
}

/**
 * Asserts two transcripts (line-oriented program outputs) are identical and,
 * if not, says where they first differ, with a little context.
 */
export function assertSameTranscript(
  what: string,
  reference: { kind: TargetKind; text: string },
  actual: { kind: TargetKind; text: string },
): void {
  if (reference.text === actual.text) return;
  const a = reference.text.split('\n');
  const b = actual.text.split('\n');
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  const from = Math.max(0, i - 3);
  const show = (lines: string[]): string =>
    lines
      .slice(from, i + 3)
      .map((l, k) => `${from + k === i ? '>' : ' '} ${from + k + 1}: ${l}`)
      .join('\n');
  throw new Error(
    `${what}: ${actual.kind} differs from ${reference.kind} at line ${i + 1}\n` +
      `--- ${reference.kind} ---\n${show(a)}\n--- ${actual.kind} ---\n${show(b)}`,
  );
}
