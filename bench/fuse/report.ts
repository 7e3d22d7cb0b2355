import { type Cell, valueOf } from './cell.js';

/**
 * Numbered notes under a table: a missing figure shows as "— [n]" and its
 * reason is printed once below, however many cells share it.
 */
export class Notes {
  private readonly reasons: string[] = [];

  marker(reason: string): string {
    let at = this.reasons.indexOf(reason);
    if (at < 0) at = this.reasons.push(reason) - 1;
    return `[${at + 1}]`;
  }

  render(): string {
    return this.reasons.map((r, i) => `[${i + 1}] ${r.replace(/\s+/g, ' ')}`).join('  \n');
  }
}

export function markdownTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`;
  return [line(header), rule, ...rows.map(line)].join('\n');
}

/** µs with one decimal (two below 1 µs). */
export function micros(cell: Cell | undefined, notes: Notes): string {
  if (cell === undefined) return '—';
  if ('missing' in cell) return `— ${notes.marker(cell.missing)}`;
  return cell.value < 1 ? cell.value.toFixed(2) : cell.value.toFixed(1);
}

/** A rate with thousands separators. */
export function rate(cell: Cell | undefined, notes: Notes): string {
  if (cell === undefined) return '—';
  if ('missing' in cell) return `— ${notes.marker(cell.missing)}`;
  return Math.round(cell.value).toLocaleString('en-US');
}

/** a ÷ b as "12.3×", or "—" when either is missing. */
export function times(a: Cell | undefined, b: Cell | undefined): string {
  const x = valueOf(a);
  const y = valueOf(b);
  if (x === undefined || y === undefined || y === 0) return '—';
  return `${(x / y).toFixed(x / y < 10 ? 2 : 1)}×`;
}

/** a as a percentage of b, or "—". */
export function percent(a: Cell | undefined, b: Cell | undefined): string {
  const x = valueOf(a);
  const y = valueOf(b);
  if (x === undefined || y === undefined || y === 0) return '—';
  const p = (100 * x) / y;
  // One decimal below 100% so a share just under a target never prints as the target itself.
  return `${p < 100 ? p.toFixed(1) : Math.round(p)}%`;
}

/** "≥ 20%: ✓" style verdict for a share of the baseline. */
export function shareVerdict(target: number | undefined, ours: Cell | undefined, baseline: Cell | undefined): string {
  if (target === undefined) return '';
  const label = `≥ ${Math.round(target * 100)}%`;
  const x = valueOf(ours);
  const y = valueOf(baseline);
  if (x === undefined || y === undefined || y === 0) return `${label}: —`;
  return `${label}: ${x / y >= target ? 'met' : 'MISSED'}`;
}

/** "≤ 1.6×: met" style verdict for a cost ratio. */
export function ratioVerdict(limit: number, ours: Cell | undefined, reference: Cell | undefined): string {
  const label = `≤ ${limit}×`;
  const x = valueOf(ours);
  const y = valueOf(reference);
  if (x === undefined || y === undefined || y === 0) return `${label}: —`;
  return `${label}: ${x / y <= limit ? 'met' : 'MISSED'}`;
}
