/**
 * The `__txid` cookie LiteFS's proxy uses for read-your-writes: a write's
 * response sets it to the database's TXID after the write, and a later read
 * on a replica waits until the replica has reached that TXID.
 */
export const TXID_COOKIE = '__txid';

/** How long the browser keeps the cookie (LiteFS: 5 minutes). */
export const TXID_COOKIE_TTL_MS = 5 * 60_000;

/**
 * The TXID a request's `Cookie` header carries, or 0n when it has none or
 * an invalid one (LiteFS accepts exactly 16 hex digits, as ltx.ParseTXID).
 */
export function readTXIDCookie(cookieHeader: string | undefined): bigint {
  if (cookieHeader === undefined) return 0n;
  for (const pair of cookieHeader.split(';')) {
    const eq = pair.indexOf('=');
    if (eq < 0 || pair.slice(0, eq).trim() !== TXID_COOKIE) continue;
    const value = pair.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1');
    // Go's http.Request.Cookie returns the first cookie of that name.
    return /^[0-9a-fA-F]{16}$/.test(value) ? BigInt('0x' + value) : 0n;
  }
  return 0n;
}

/** The `Set-Cookie` value LiteFS sends after a write (Go's http.Cookie.String order). */
export function txidSetCookie(txid: bigint, now: number): string {
  const expires = new Date(now + TXID_COOKIE_TTL_MS).toUTCString();
  return `${TXID_COOKIE}=${txid.toString(16).padStart(16, '0')}; Path=/; Expires=${expires}; HttpOnly`;
}
