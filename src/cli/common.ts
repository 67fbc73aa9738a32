/**
 * Conventions shared by every command: where a run is written, how tables and JSON are printed,
 * how progress is shown (always on stderr, so `--json` output on stdout stays one document).
 */
import { Option } from 'commander';
import { initBackend } from '../backend/backend.ts';

export const backendOption = () =>
  new Option('--backend <name>', 'compute backend: tensorflow, wasm or cpu (default: best available)').env(
    'LONGTAIL_BACKEND',
  );

export async function startBackend(name: string | undefined) {
  return initBackend(name);
}

/** Prints one JSON document on stdout. */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

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

/** Writes progress and notes to stderr. */
export function note(message: string): void {
  process.stderr.write(`${message}\n`);
}
