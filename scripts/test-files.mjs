// Runs the test files named on the command line, in that order, LONGTAIL_TEST_CONCURRENCY at a time,
// with the spec reporter and scripts/test-times.mjs on stdout; exit code 1 when a test failed.
// scripts/run-tests.mjs starts it under tsx. This is `node --test FILES` but for the order: Node 20's
// runner sorts the files it is given, and the run-tests.mjs list starts the slowest first.
// Test files inherit this process's --import tsx and --conditions (node:test passes execArgv on).
import { run } from 'node:test';
import { spec } from 'node:test/reporters';
import fileTimes from './test-times.mjs';

const files = process.argv.slice(2);
const concurrency = Number(process.env.LONGTAIL_TEST_CONCURRENCY) || 2;
const stream = run({ files, concurrency });
let failed = false;
stream.on('test:fail', (data) => {
  if (!data.todo) failed = true; // as node --test: a failing todo test does not fail the run
});
const printed = (reporter) =>
  new Promise((resolve, reject) => {
    const out = stream.compose(reporter);
    out.on('end', resolve);
    out.on('error', reject);
    out.pipe(process.stdout, { end: false });
  });
await Promise.all([printed(spec), printed(fileTimes)]);
process.exitCode = failed ? 1 : 0;
