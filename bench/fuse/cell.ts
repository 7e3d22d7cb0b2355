/** One measured figure, or why it is missing. */
export type Cell = { value: number } | { missing: string };

export function figure(value: number): Cell {
  return { value };
}

export function missing(reason: string): Cell {
  return { missing: reason };
}

export function valueOf(cell: Cell | undefined): number | undefined {
  return cell !== undefined && 'value' in cell ? cell.value : undefined;
}
