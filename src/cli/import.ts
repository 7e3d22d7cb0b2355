/**
 * `litefs import -name DB [-url URL] PATH` (ref §12.1): sends the SQLite
 * database file at PATH to a node's /import, which replaces DB with it as
 * one transaction.
 */
import { createReadStream } from 'node:fs';
import { NodeClient } from '../http/client.js';
import { FlagError, flagUsage, parseFlags, type FlagSpec } from './flags.js';

const FLAGS: FlagSpec[] = [
  { name: 'url', kind: 'string', usage: 'LiteFS API URL', default: 'http://localhost:20202' },
  { name: 'name', kind: 'string', usage: 'database name' },
];

export async function runImport(argv: string[]): Promise<number> {
  const flags = parseFlags(argv, FLAGS);
  const name = flags.strings.get('name') ?? '';
  const path = flags.positional[0];
  if (name === '' || path === undefined || flags.positional.length > 1) {
    throw new FlagError(`usage: litefs import -name DB [-url URL] PATH\n${flagUsage(FLAGS)}`);
  }
  const client = new NodeClient(flags.strings.get('url') ?? 'http://localhost:20202');
  const started = Date.now();
  try {
    await client.import(name, createReadStream(path) as AsyncIterable<Uint8Array>);
  } finally {
    client.close();
  }
  console.log(`Import of database ${JSON.stringify(name)} in ${Date.now() - started}ms`);
  return 0;
}
