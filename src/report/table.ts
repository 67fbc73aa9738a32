/**
 * Tables: aligned plain text for the terminal and text reports (`formatTable`), and a run's
 * results table (the paper's: method x all / many / medium / few) as text and as Markdown.
 */
import { printable } from '../io/display.ts';
import { gridEdgeWarnings, type RunResults, TABLE_HEADER, tableRows } from './results.ts';

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

export function markdownTable(r: Pick<RunResults, 'methods'>): string {
  const rows = tableRows(r);
  return [
    `| ${TABLE_HEADER.join(' | ')} |`,
    `|${TABLE_HEADER.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`,
    ...rows.map((x) => `| ${x.join(' | ')} |`),
  ].join('\n');
}

/**
 * The terminal's table, with a warning line for each tuned value at its grid's edge. A warning
 * carries the method's label (anyone's text, via registerClassifier): `printable`, so it cannot
 * colour the terminal or start a line of its own.
 */
export function textTable(r: Pick<RunResults, 'methods'>): string {
  return [
    formatTable(TABLE_HEADER, tableRows(r)),
    ...gridEdgeWarnings(r).map((w) => `warning: ${printable(w)}`),
  ].join('\n');
}
