/**
 * `backup.type: s3`: the folder backend's layout (`<prefix><db>/<min>-<max>.ltx`)
 * in an S3-compatible bucket (AWS, R2, Tigris, MinIO…), through the AWS SDK.
 * `backup.url` is `s3://BUCKET[/PREFIX][?endpoint=URL&region=R&force-path-style=true]`;
 * credentials come from the SDK's usual sources (AWS_ACCESS_KEY_ID and
 * AWS_SECRET_ACCESS_KEY, a profile, an instance role), never from the URL.
 * Objects are never removed or overwritten; a file is uploaded only after it
 * has been verified in full and checked to continue the database's chain.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream, mkdirSync, writeFileSync } from 'node:fs';
import { mkdir, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { LTXDecoder, type Pos, ZERO_POS, formatFilename, formatHex16, parseFilename, verifyFileSync } from '../ltx/index.js';
import { type BackupClient, checkDatabaseName, checkJoinsChain } from './client.js';

export class S3URLError extends Error {
  override readonly name = 'S3URLError';
}

export interface S3Location {
  readonly bucket: string;
  /** '' or ending in '/'. */
  readonly prefix: string;
  readonly endpoint: string | undefined;
  readonly region: string | undefined;
  readonly forcePathStyle: boolean;
}

/** Parses `s3://BUCKET[/PREFIX][?endpoint=…&region=…&force-path-style=true]`. */
export function parseS3URL(text: string): S3Location {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new S3URLError(`invalid backup.url ${JSON.stringify(text)}: want s3://BUCKET[/PREFIX]`);
  }
  if (url.protocol !== 's3:' || url.hostname === '') throw new S3URLError(`invalid backup.url ${JSON.stringify(text)}: want s3://BUCKET[/PREFIX]`);
  const known = new Set(['endpoint', 'region', 'force-path-style']);
  for (const key of url.searchParams.keys()) {
    if (!known.has(key)) throw new S3URLError(`invalid backup.url: unknown parameter ${JSON.stringify(key)} (known: ${[...known].join(', ')})`);
  }
  const path = decodeURIComponent(url.pathname).replace(/^\/+/, '');
  const style = url.searchParams.get('force-path-style');
  if (style !== null && style !== 'true' && style !== 'false') throw new S3URLError('invalid backup.url: force-path-style is true or false');
  return {
    bucket: url.hostname,
    prefix: path === '' || path.endsWith('/') ? path : `${path}/`,
    endpoint: url.searchParams.get('endpoint') ?? undefined,
    region: url.searchParams.get('region') ?? undefined,
    forcePathStyle: style === 'true',
  };
}

interface ObjectName {
  readonly key: string;
  readonly file: string;
  readonly maxTXID: bigint;
}

export class S3BackupClient implements BackupClient {
  private readonly s3: S3Client;
  /** Positions of objects already verified (objects never change). */
  private readonly verified = new Map<string, Pos>();
  /** Each database's newest object as last seen (position() lists only what came after it). */
  private readonly newest = new Map<string, ObjectName>();
  private queue: Promise<unknown> = Promise.resolve();

  /**
   * `spoolDir`: where an upload is written (and verified) before it is sent,
   * so a snapshot of a large database never sits in memory whole; default
   * the system's temporary folder (`litefs mount` uses `<data>/tmp`).
   */
  constructor(
    private readonly where: S3Location,
    s3?: S3Client,
    private readonly spoolDir: string = tmpdir(),
  ) {
    this.s3 = s3 ?? quietly(() => new S3Client({
        region: where.region ?? process.env['AWS_REGION'] ?? process.env['AWS_DEFAULT_REGION'] ?? 'us-east-1',
        ...(where.endpoint === undefined ? {} : { endpoint: where.endpoint }),
        forcePathStyle: where.forcePathStyle,
        // No extra checksum headers or aws-chunked bodies: plain signed PUTs every S3-compatible store accepts.
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
      }));
  }

  get url(): string {
    return `s3://${this.where.bucket}/${this.where.prefix}`;
  }

  async posMap(): Promise<Map<string, Pos>> {
    const out = new Map<string, Pos>();
    for (const db of await this.databases()) {
      const pos = await this.position(db);
      if (pos.txid !== 0n) out.set(db, pos);
    }
    return out;
  }

  /**
   * The database's backup position: its object with the greatest max TXID,
   * verified; zero when none. A backup gains an object a second or so, so
   * only the first look lists all of a database's objects; later ones list
   * the keys after the newest seen (they sort by min TXID) and the
   * snapshots (`…0001-…`, which sort first), two short listings.
   */
  async position(name: string): Promise<Pos> {
    const known = this.newest.get(name);
    const candidates =
      known === undefined
        ? await this.list(this.dbPrefix(name))
        : [known, ...(await this.list(this.dbPrefix(name), known.key)), ...(await this.list(`${this.dbPrefix(name)}${formatHex16(1n)}-`))];
    let newest: ObjectName | undefined;
    for (const o of candidates) if (newest === undefined || o.maxTXID > newest.maxTXID) newest = o;
    if (newest === undefined) return ZERO_POS;
    this.newest.set(name, newest);
    return this.positionOf(newest);
  }

  writeTx(name: string, body: AsyncIterable<Uint8Array>): Promise<bigint> {
    const run = this.queue.then(() => this.write(name, body));
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** The names of the database's LTX objects. */
  async files(name: string): Promise<string[]> {
    return (await this.list(this.dbPrefix(name))).map((o) => o.file);
  }

  /** Copies the named LTX objects of `name` (default: all) into `dir/name/` (for restore). Returns how many. */
  async download(name: string, dir: string, only?: readonly string[]): Promise<number> {
    const target = join(dir, name);
    mkdirSync(target, { recursive: true });
    const files = only ?? (await this.files(name));
    for (const file of files) writeFileSync(join(target, file), await this.get(this.dbPrefix(name) + file));
    return files.length;
  }

  private async write(name: string, body: AsyncIterable<Uint8Array>): Promise<bigint> {
    checkDatabaseName(name);
    await mkdir(this.spoolDir, { recursive: true });
    const spool = join(this.spoolDir, `s3-upload-${randomBytes(6).toString('hex')}.ltx`);
    try {
      // Verified while spooled: nothing that does not decode is sent.
      const decoder = new LTXDecoder({});
      let size = 0;
      const file = await open(spool, 'wx', 0o600);
      try {
        for await (const chunk of body) {
          decoder.push(chunk);
          await file.write(chunk);
          size += chunk.length;
        }
      } finally {
        await file.close();
      }
      const { header, trailer } = decoder.end();
      const at = await this.position(name);
      checkJoinsChain(name, header, at);
      const key = this.dbPrefix(name) + formatFilename(header.minTXID, header.maxTXID);
      await this.s3.send(new PutObjectCommand({ Bucket: this.where.bucket, Key: key, Body: createReadStream(spool), ContentLength: size }));
      this.remember(key, header.minTXID, header.maxTXID, trailer.postApplyChecksum, name);
      return header.maxTXID;
    } finally {
      await rm(spool, { force: true });
    }
  }

  /** An object this client just stored: verified, and the database's newest. */
  private remember(key: string, minTXID: bigint, maxTXID: bigint, postApplyChecksum: bigint, name: string): void {
    this.verified.set(key, { txid: maxTXID, postApplyChecksum });
    this.newest.set(name, { key, file: formatFilename(minTXID, maxTXID), maxTXID });
  }

  private dbPrefix(name: string): string {
    return `${this.where.prefix}${name}/`;
  }

  private async positionOf(o: ObjectName): Promise<Pos> {
    const known = this.verified.get(o.key);
    if (known !== undefined) return known;
    const summary = verifyFileSync(await this.get(o.key));
    const pos = { txid: summary.header.maxTXID, postApplyChecksum: summary.trailer.postApplyChecksum };
    this.verified.set(o.key, pos);
    return pos;
  }

  /** The databases the backup holds: the "folders" under the prefix. */
  private async databases(): Promise<string[]> {
    const out: string[] = [];
    let token: string | undefined;
    do {
      const page = await this.s3.send(new ListObjectsV2Command({ Bucket: this.where.bucket, Prefix: this.where.prefix, Delimiter: '/', ContinuationToken: token }));
      for (const p of page.CommonPrefixes ?? []) {
        const db = (p.Prefix ?? '').slice(this.where.prefix.length).replace(/\/$/, '');
        if (db !== '') out.push(db);
      }
      token = page.IsTruncated === true ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
    return out;
  }

  /** Every LTX object under `prefix` (a database's, or part of one), after `startAfter` if given, all pages of the listing. */
  private async list(prefix: string, startAfter?: string): Promise<ObjectName[]> {
    const out: ObjectName[] = [];
    let token: string | undefined;
    do {
      const page = await this.s3.send(
        new ListObjectsV2Command({ Bucket: this.where.bucket, Prefix: prefix, ContinuationToken: token, ...(startAfter === undefined ? {} : { StartAfter: startAfter }) }),
      );
      for (const item of page.Contents ?? []) {
        const key = item.Key ?? '';
        const rest = key.slice(this.where.prefix.length).split('/');
        if (rest.length !== 2) continue;
        try {
          out.push({ key, file: rest[1]!, maxTXID: parseFilename(rest[1]!).maxTXID });
        } catch {
          // Not an LTX file: someone else's object.
        }
      }
      token = page.IsTruncated === true ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
    return out;
  }

  private async get(key: string): Promise<Uint8Array> {
    const res = await this.s3.send(new GetObjectCommand({ Bucket: this.where.bucket, Key: key }));
    if (res.Body === undefined) throw new Error(`s3://${this.where.bucket}/${key}: empty answer`);
    return res.Body.transformToByteArray();
  }

  close(): void {
    this.s3.destroy();
  }
}

/**
 * Makes the SDK client without its notice that SDK versions from 2027 on
 * will need Node 22: the version this project pins runs on Node 20, and the
 * notice would land in every user's log. (The SDK reads the variable once,
 * when the first client is made; it is set back so the application exec'd
 * later does not inherit it.)
 */
function quietly<T>(make: () => T): T {
  const name = 'AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED';
  const saved = process.env[name];
  process.env[name] = 'true';
  try {
    return make();
  } finally {
    if (saved === undefined) delete process.env[name];
    else process.env[name] = saved;
  }
}
