/** Aligned plain-text tables, for the terminal and text reports. */
import { printable } from '../io/display.ts';

/**
 * Formats rows as an aligned text table (the `leftAligned` columns left, others right). Cells are
 * shown with `printable`: a class name cannot colour the terminal or break a row.
 */
export function formatTable(
  header: string[],
  rows: (string | number | null)[][],
  leftAligned: number[] = [0],
): string {
  const cells = [
    header.map(printable),
    ...rows.map((r) => r.map((c) => (c === null ? '-' : printable(String(c))))),
  ];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells
    .map((r) =>
      r
        .map((c, i) => (leftAligned.includes(i) ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}
