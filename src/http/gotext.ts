/**
 * Text exactly as Go LiteFS produces it: `%q` quoting for error messages,
 * encoding/json's string escaping, and time.Time's JSON form. Needed where
 * our bytes must match a Go node's.
 */

/** Go's %q for a string: double quotes, backslash escapes for quotes, backslashes and control bytes. */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '"' || ch === '\\') out += '\\' + ch;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (c < 0x20 || c === 0x7f) out += '\\x' + c.toString(16).padStart(2, '0');
    else out += ch;
  }
  return out + '"';
}

/**
 * JSON.stringify plus the escapes Go's encoding/json adds for HTML safety
 * (`<`, `>`, `&`, U+2028, U+2029), so output is byte-identical to Go's.
 */
export function goJSON(value: unknown, indent?: string): string {
  return JSON.stringify(value, null, indent).replace(
    /[<>&\u2028\u2029]/g,
    (ch) => '\\u' + ch.charCodeAt(0).toString(16).padStart(4, '0'),
  );
}

/**
 * time.Time's JSON text for a UTC time in milliseconds: RFC 3339 with the
 * fraction's trailing zeros trimmed (`.380` → `.38`, `.000` → none).
 */
export function goTimestamp(ms: number): string {
  const iso = new Date(ms).toISOString(); // 2026-11-23T21:16:20.380Z
  const dot = iso.indexOf('.');
  const fraction = iso.slice(dot + 1, -1).replace(/0+$/, '');
  return iso.slice(0, dot) + (fraction ? '.' + fraction : '') + 'Z';
}
