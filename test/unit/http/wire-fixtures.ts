/**
 * Typed access to the recorded Go LiteFS v0.5.11 traffic in
 * test/fixtures/wire/ (index.json describes every capture).
 */
import { readFileSync } from 'node:fs';
import { fixture } from '../../helpers/paths.js';

export interface IndexFrame {
  index: number;
  offset: number;
  length: number;
  type: number;
  kind: string;
  name?: string;
  size_field?: number;
  chunks?: number[];
  txid?: number;
  timestamp_ms?: number;
  ltx?: { snapshot: boolean; minTXID: number; maxTXID: number; postApplyChecksum: string; bytes: number };
}

export interface Capture {
  name: string;
  description: string;
  protocol: string;
  request_headers: [string, string][];
  request_body: { length: number; hex: string } | null;
  response_status: string;
  response_headers: [string, string][];
  response_body_length: number;
  files: { headers: string; body?: string; request_body?: string };
  header_masks: [string, string, string][];
  body_masks: [number, number, string][];
  frames?: IndexFrame[];
}

export interface RawExchange {
  name: string;
  request_file: string;
  response_file: string;
  response_length: number;
  masks: [number, number, string][];
}

interface WireIndex {
  captures: Capture[];
  raw_http1: RawExchange[];
}

export const wireIndex: WireIndex = JSON.parse(readFileSync(fixture('wire', 'index.json'), 'utf8')) as WireIndex;

export function wireFile(name: string): Buffer {
  return readFileSync(fixture('wire', name));
}

export function capture(name: string): Capture {
  const c = wireIndex.captures.find((x) => x.name === name);
  if (!c) throw new Error(`no capture named ${name} in index.json`);
  return c;
}

export function rawExchange(name: string): RawExchange {
  const c = wireIndex.raw_http1.find((x) => x.name === name);
  if (!c) throw new Error(`no raw_http1 exchange named ${name} in index.json`);
  return c;
}

/** The on-disk LTX file the node held for `db` at `txid` (incremental, min = max = txid). */
export function recordedLTX(db: string, txid: number): Buffer {
  const t = txid.toString(16).padStart(16, '0');
  return wireFile(`ltx-${db}-${t}-${t}.ltx`);
}

/** Copy of `buf` with the byte ranges [start, end) set to 0. */
export function masked(buf: Uint8Array, masks: readonly (readonly [number, number, ...unknown[]])[]): Buffer {
  const out = Buffer.from(buf);
  for (const [start, end] of masks) out.fill(0, start, Math.min(end, out.length));
  return out;
}
