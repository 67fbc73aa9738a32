// A second test reporter beside spec (scripts/run-tests.mjs): after the run it prints the files whose
// top-level tests took longest, so the suite's time is spent where somebody looks. A file's figure is
// the sum of its top-level tests' and suites' durations (hooks included), not its process's wall time.
import { relative } from 'node:path';

const ROOT = new URL('..', import.meta.url).pathname;
const SHOWN = 15;

export default async function* fileTimes(source) {
  const byFile = new Map();
  for await (const event of source) {
    if (event.type !== 'test:pass' && event.type !== 'test:fail') continue;
    const { nesting, file, details } = event.data;
    if (nesting !== 0 || !file) continue;
    byFile.set(file, (byFile.get(file) ?? 0) + (details?.duration_ms ?? 0));
  }
  const rows = [...byFile].sort((a, b) => b[1] - a[1]);
  const total = rows.reduce((s, [, ms]) => s + ms, 0);
  yield `\nslowest test files (sum of top-level durations; ${(total / 1000).toFixed(0)} s over ${rows.length} files, run 2 at a time):\n`;
  for (const [file, ms] of rows.slice(0, SHOWN))
    yield `  ${(ms / 1000).toFixed(1).padStart(7)} s  ${relative(ROOT, file)}\n`;
}
