/**
 * LiteFS's path globs for `proxy.passthrough` and `proxy.always-forward`
 * (its CompileMatch): every character matches itself, regex metacharacters
 * included, except `*`, which matches any run of characters, `/` too. The
 * whole path must match: `/build/*` matches `/build/` and `/build/a/b` but
 * not `/build`; `*.png` matches `/images/pic.png`.
 */
export function compileGlob(pattern: string): RegExp {
  const body = pattern
    .split('*')
    .map((part) => part.replace(/[.+?^${}()|[\]\\/-]/g, '\\$&'))
    .join('.*');
  return new RegExp(`^${body}$`, 's');
}

export function matchesAny(globs: readonly RegExp[], path: string): boolean {
  return globs.some((glob) => glob.test(path));
}
