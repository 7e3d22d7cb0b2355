import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * An S3 stand-in for tests: no S3-compatible server is packaged for Debian
 * (MinIO, moto and the like are not), so this implements, path-style and in
 * memory, the three calls litefs-ts makes: PutObject, GetObject and
 * ListObjectsV2 (prefix, delimiter, start-after, pagination). Signatures are
 * not checked; the AWS SDK on the other side is the real one.
 */
export class S3Standin {
  readonly objects = new Map<string, Buffer>();
  /** Requests seen, as `METHOD path?query`. */
  readonly requests: string[] = [];

  private constructor(
    private readonly server: Server,
    readonly port: number,
    /** Keys per ListObjectsV2 page (S3: 1000), small to exercise pagination. */
    private readonly pageSize: number,
  ) {}

  /** http://127.0.0.1:<port>: the `endpoint` of an `s3://` backup URL. */
  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  static async start(options: { pageSize?: number } = {}): Promise<S3Standin> {
    const holder: { s3?: S3Standin } = {};
    const server = createServer((req, res) => {
      void holder.s3!.handle(req, res);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    holder.s3 = new S3Standin(server, (server.address() as AddressInfo).port, options.pageSize ?? 1000);
    return holder.s3;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }

  /** Keys in the bucket under `prefix`, sorted. */
  keys(bucket: string, prefix = ''): string[] {
    return [...this.objects.keys()]
      .filter((k) => k.startsWith(`${bucket}/${prefix}`))
      .map((k) => k.slice(bucket.length + 1))
      .sort();
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://s3.invalid');
    this.requests.push(`${req.method} ${url.pathname}${url.search}`);
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const [, bucket = '', ...rest] = url.pathname.split('/');
    const key = decodeURIComponent(rest.join('/'));
    if (req.method === 'PUT' && key !== '') {
      this.objects.set(`${bucket}/${key}`, Buffer.concat(chunks));
      res.writeHead(200, { etag: '"standin"' }).end();
    } else if (req.method === 'GET' && key !== '') {
      const body = this.objects.get(`${bucket}/${key}`);
      if (body === undefined) return xml(res, 404, `<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message><Key>${escape(key)}</Key></Error>`);
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length, etag: '"standin"' }).end(body);
    } else if (req.method === 'GET' && url.searchParams.get('list-type') === '2') {
      const prefix = url.searchParams.get('prefix') ?? '';
      const startAfter = url.searchParams.get('start-after') ?? '';
      const delimiter = url.searchParams.get('delimiter') ?? '';
      // Keys, and the common prefixes the delimiter rolls keys up into, in one sorted list (S3 pages through both).
      const entries: { key: string; common: boolean }[] = [];
      for (const key of this.keys(bucket, prefix).filter((k) => k > startAfter)) {
        const cut = delimiter === '' ? -1 : key.indexOf(delimiter, prefix.length);
        if (cut < 0) entries.push({ key, common: false });
        else if (entries.at(-1)?.key !== key.slice(0, cut + 1)) entries.push({ key: key.slice(0, cut + 1), common: true });
      }
      const from = Number(url.searchParams.get('continuation-token') ?? '0');
      const page = entries.slice(from, from + this.pageSize);
      const truncated = from + page.length < entries.length;
      const contents = page
        .map((e) =>
          e.common
            ? `<CommonPrefixes><Prefix>${escape(e.key)}</Prefix></CommonPrefixes>`
            : `<Contents><Key>${escape(e.key)}</Key><Size>${this.objects.get(`${bucket}/${e.key}`)!.length}</Size><LastModified>2026-01-01T00:00:00.000Z</LastModified><ETag>"standin"</ETag><StorageClass>STANDARD</StorageClass></Contents>`,
        )
        .join('');
      xml(
        res,
        200,
        `<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>${escape(bucket)}</Name><Prefix>${escape(prefix)}</Prefix>` +
          `<KeyCount>${page.length}</KeyCount><MaxKeys>${this.pageSize}</MaxKeys><IsTruncated>${truncated}</IsTruncated>${contents}` +
          (truncated ? `<NextContinuationToken>${from + page.length}</NextContinuationToken>` : '') +
          '</ListBucketResult>',
      );
    } else {
      xml(res, 400, `<Error><Code>NotImplemented</Code><Message>the stand-in does not do ${escape(req.method ?? '')} ${escape(url.pathname)}</Message></Error>`);
    }
  }
}

function xml(res: ServerResponse, status: number, body: string): void {
  const text = `<?xml version="1.0" encoding="UTF-8"?>\n${body}`;
  res.writeHead(status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(text) }).end(text);
}

function escape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}
