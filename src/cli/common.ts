/**
 * Conventions shared by every command: where a run is written, how JSON is printed,
 * how progress is shown (always on stderr, so `--json` output on stdout stays one document).
 */
import { Option } from 'commander';
import { printableLines } from '../io/display.ts';

export const backendOption = () =>
  new Option('--backend <name>', 'compute backend: tensorflow, wasm or cpu (default: best available)').env(
    'LONGTAIL_BACKEND',
  );

/** Starts the compute backend; TensorFlow.js is imported here, when a command needs it. */
export async function startBackend(name: string | undefined) {
  const { initBackend } = await import('../backend/backend.ts');
  return initBackend(name);
}

/** Prints one JSON document on stdout. */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Writes progress and notes to stderr; text from outside (file and class names) cannot drive the terminal. */
export function note(message: string): void {
  process.stderr.write(`${printableLines(message)}\n`);
}
