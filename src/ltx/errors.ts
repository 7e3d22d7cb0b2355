/**
 * Typed errors of the LTX codec. Every error carries `rule`, a short stable
 * kebab-case name of the check that failed ('invalid-page-size',
 * 'file-checksum-mismatch', ...), so callers and tests can branch on the rule
 * while the message stays identical to superfly/ltx v0.3.13's text.
 */
export class LTXError extends Error {
  readonly rule: string;

  constructor(rule: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.rule = rule;
  }
}

/** A TXID, checksum, position, file name or timestamp string did not parse. */
export class LTXParseError extends LTXError {}

/** `validateHeader` or `validateTrailer` rejected a value (formats.md A.2, A.5). */
export class LTXValidationError extends LTXError {}

/** The encoder was used out of order or given an invalid page or trailer. */
export class LTXEncodeError extends LTXError {}

/** An LTX byte stream is malformed, truncated or fails a checksum. */
export class LTXDecodeError extends LTXError {}

/** The LZ4 frame inside an LTX file is malformed (a kind of decode error). */
export class LZ4FrameError extends LTXDecodeError {}

/** The compactor's inputs cannot be merged. */
export class LTXCompactError extends LTXError {}

/**
 * Go's %q for the strings these errors quote: a double-quoted string with
 * Go escapes, so messages match the Go library's byte for byte on ASCII.
 */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0) ?? 0;
    if (ch === '"' || ch === '\\') out += '\\' + ch;
    else if (c === 0x07) out += '\\a';
    else if (c === 0x08) out += '\\b';
    else if (c === 0x0c) out += '\\f';
    else if (c === 0x0a) out += '\\n';
    else if (c === 0x0d) out += '\\r';
    else if (c === 0x09) out += '\\t';
    else if (c === 0x0b) out += '\\v';
    else if (c < 0x20 || c === 0x7f) out += '\\x' + c.toString(16).padStart(2, '0');
    else if (c >= 0xd800 && c <= 0xdfff) out += '\\ufffd';
    else out += ch;
  }
  return out + '"';
}
