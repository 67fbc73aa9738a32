// A second test reporter beside spec (scripts/run-tests.mjs): after the run it prints the files whose
// top-level tests took longest, then the slowest single tests, so the suite's time is spent where
// somebody looks. A file's figure is the sum of its top-level tests' and suites' durations (hooks
// included), not its process's wall time; a test's is its own duration (a suite's `before` hook
// counts in the file's figure, not in any test's).
import { relative } from 'node:path';

const ROOT = new URL('..', import.meta.url).pathname;
const SHOWN = 15;
const SHOWN_TESTS = 10;

export default async function* fileTimes(source) {
  const byFile = new Map();
  const tests = [];
  for await (const event of source) {
    if (event.type !== 'test:pass' && event.type !== 'test:fail') continue;
    const { nesting, file, details, name } = event.data;
    if (!file) continue;
    const ms = details?.duration_ms ?? 0;
    if (nesting === 0) byFile.set(file, (byFile.get(file) ?? 0) + ms);
    if (details?.type !== 'suite') tests.push([ms, file, name]);
  }
  const rows = [...byFile].sort((a, b) => b[1] - a[1]);
  const total = rows.reduce((s, [, ms]) => s + ms, 0);
  yield `\nslowest test files (sum of top-level durations; ${(total / 1000).toFixed(0)} s over ${rows.length} files, run ${process.env.LONGTAIL_TEST_CONCURRENCY ?? '?'} at a time):\n`;
  for (const [file, ms] of rows.slice(0, SHOWN))
    yield `  ${(ms / 1000).toFixed(1).padStart(7)} s  ${relative(ROOT, file)}\n`;
  if (tests.length === 0) return;
  yield `slowest tests (of ${tests.length}):\n`;
  for (const [ms, file, name] of tests.sort((a, b) => b[0] - a[0]).slice(0, SHOWN_TESTS))
    yield `  ${(ms / 1000).toFixed(1).padStart(7)} s  ${relative(ROOT, file)}: ${name.length > 90 ? `${name.slice(0, 89)}…` : name}\n`;
}
