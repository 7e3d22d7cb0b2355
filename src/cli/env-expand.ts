/**
 * Environment expansion of `litefs.yml` text, as LiteFS v0.5.11 does it before
 * parsing (ref §12.2): Go `os.Expand` semantics (`$VAR`, `${VAR}`, unset → ""),
 * braced content trimmed, and inside `${ }` the comparisons
 * `NAME == 'lit'`, `NAME != "lit"`, `NAME == OTHER`, `NAME != OTHER`, which
 * expand to `true` or `false`.
 */
export type Env = Readonly<Record<string, string | undefined>>;

const COMPARISON = /^(\w+)\s*(==|!=)\s*(?:'([^']*)'|"([^"]*)"|(\w+))$/;
const SPECIAL = '*#$@!?-0123456789';

export function expandEnv(text: string, env: Env): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const ch = text[i]!;
    if (ch !== '$' || i + 1 >= text.length) {
      out += ch;
      i++;
      continue;
    }
    const next = text[i + 1]!;
    if (next === '{') {
      const close = text.indexOf('}', i + 2);
      if (close < 0) {
        // Go treats a missing closing brace as a bad syntax: it drops "${".
        out += text.slice(i + 2);
        break;
      }
      out += expandBraced(text.slice(i + 2, close), env);
      i = close + 1;
      continue;
    }
    if (SPECIAL.includes(next)) {
      out += env[next] ?? '';
      i += 2;
      continue;
    }
    const m = /^[A-Za-z0-9_]+/.exec(text.slice(i + 1));
    if (m === null) {
      // "$" followed by something that is not a name: Go drops the "$" and keeps the rest.
      i++;
      continue;
    }
    out += env[m[0]] ?? '';
    i += 1 + m[0].length;
  }
  return out;
}

function expandBraced(inner: string, env: Env): string {
  const body = inner.trim();
  const cmp = COMPARISON.exec(body);
  if (cmp !== null) {
    const left = env[cmp[1]!] ?? '';
    const right = cmp[3] ?? cmp[4] ?? env[cmp[5]!] ?? '';
    const equal = left === right;
    return String(cmp[2] === '==' ? equal : !equal);
  }
  return env[body] ?? '';
}
