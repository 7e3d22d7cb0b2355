import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

/** Repository root, whether running from dist/bench/fuse/ or bench/fuse/. */
export const repoRoot: string = (() => {
  const here = fileURLToPath(new URL('.', import.meta.url));
  const marker = here.lastIndexOf('/dist/');
  return marker >= 0 ? here.slice(0, marker) : join(here, '..', '..');
})();

/** C sources of the benchmark's client programs. */
export const programsDir = join(repoRoot, 'bench', 'programs');

/** Entry point of our CLI (the `passthrough` command). */
export const cliMain = join(repoRoot, 'dist', 'src', 'cli', 'main.js');
