/** Aligned plain-text tables, for the terminal and text reports. */

/** Formats rows as an aligned text table (the `leftAligned` columns left, others right). */
export function formatTable(
  header: string[],
  rows: (string | number | null)[][],
  leftAligned: number[] = [0],
): string {
  const cells = [header, ...rows.map((r) => r.map((c) => (c === null ? '-' : String(c))))];
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
