import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

/** Repository root; compiled tests live in dist/test/..., sources in test/... */
export const repoRoot: string = (() => {
  const here = fileURLToPath(new URL('.', import.meta.url));
  const marker = here.lastIndexOf('/dist/');
  return marker >= 0 ? here.slice(0, marker) : join(here, '..', '..');
})();

/** Path of a file under test/fixtures/. */
export function fixture(...parts: string[]): string {
  return join(repoRoot, 'test', 'fixtures', ...parts);
}
