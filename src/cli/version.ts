import { readFileSync } from 'node:fs';

/** The package version, read from package.json so there is one source of truth. */
export function packageVersion(): string {
  const pkgUrl = new URL('../../../package.json', import.meta.url);
  const pkg = JSON.parse(readFileSync(pkgUrl, 'utf8')) as { version?: unknown };
  return typeof pkg.version === 'string' ? pkg.version : 'development build';
}

/** Matches LiteFS's `LiteFS <version>, commit=<sha>` shape, naming our implementation. */
export function versionLine(): string {
  return `litefs-ts v${packageVersion()} (LiteFS v0.5.11 compatible)`;
}
