import { AsyncLocalStorage } from 'node:async_hooks';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * scripts/run-tests.mjs compiles the command line while the first test files run, and writes the
 * file LONGTAIL_TEST_CLI_STATUS names when the build has ended: a test file that imports this
 * module waits here for it (sleeping, so the build has the core), then fails with the compiler's
 * output if the build failed. Without the variable (a test file run by hand) nothing waits.
 */
function waitForBuild(status: string | undefined): void {
  if (status === undefined || status === '') return;
  const nap = new Int32Array(new SharedArrayBuffer(4));
  const until = Date.now() + 900_000;
  while (!existsSync(status)) {
    if (Date.now() > until) throw new Error(`the command line for the tests was not built within 15 minutes`);
    Atomics.wait(nap, 0, 0, 100);
  }
  const built = JSON.parse(readFileSync(status, 'utf8')) as { ok: boolean; output: string };
  if (!built.ok) throw new Error(`building the command line for the tests failed:\n${built.output}`);
}
waitForBuild(process.env.LONGTAIL_TEST_CLI_STATUS);

/**
 * The `longtail` the tests start: the compiled build scripts/run-tests.mjs makes once per run
 * (LONGTAIL_TEST_CLI), or the checkout's bin/longtail.js (TypeScript through tsx) without it.
 */
export const BIN =
  process.env.LONGTAIL_TEST_CLI ?? join(import.meta.dirname, '..', '..', 'bin', 'longtail.js');

/** What a `longtail` call gave: its exit code and everything it wrote. */
export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the real CLI in a child process. */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}): CliResult {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    timeout: 300_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Where a running in-process call's output goes; writes from anywhere else pass through. */
interface Sink {
  stdout: string;
  stderr: string;
  open: boolean;
}
const sinks = new AsyncLocalStorage<Sink>();
let capturing = false;
let busy = false;

/**
 * Routes process.stdout/stderr writes made inside a `runInProcess` call (its async context, so
 * not the test runner's own reports written meanwhile) into that call's sink.
 */
function captureOutput(): void {
  if (capturing) return;
  capturing = true;
  for (const name of ['stdout', 'stderr'] as const) {
    const stream = process[name];
    const write = stream.write;
    stream.write = function (this: NodeJS.WriteStream, chunk: unknown, ...rest: unknown[]): boolean {
      const sink = sinks.getStore();
      if (sink === undefined || !sink.open)
        return (write as (...a: unknown[]) => boolean).apply(this, [chunk, ...rest]);
      sink[name] += typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('utf8');
      const done = rest.find((r) => typeof r === 'function') as (() => void) | undefined;
      if (done !== undefined) process.nextTick(done);
      return true;
    } as typeof stream.write;
  }
}

/**
 * Whether a variable that was set changed or went away, or a LONGTAIL_ one appeared. (A native
 * library may set its own on first load, as sharp sets VIPSHOME: once, the same for every call.)
 */
function envChanged(before: NodeJS.ProcessEnv): boolean {
  const now = process.env;
  return (
    Object.keys(before).some((k) => now[k] !== before[k]) ||
    Object.keys(now).some((k) => k.startsWith('LONGTAIL_') && !(k in before))
  );
}

/**
 * `longtail ARGS` in this process: the `main(argv)` that bin/longtail.js runs (src/cli/main.ts,
 * through tsx), with its stdout, stderr and exit code captured as `runCli` gives them, without a
 * Node start of its own (about 1.2 s of CPU each). For calls that check a message,
 * an exit code and the files: the process itself (its exit, signals, a flushed pipe, environment
 * variables read at start) is `runCli`'s to test. One call at a time; a call that leaves a
 * process-wide trace (a SIGINT handler, the working directory, the environment) fails; the exit
 * code a command sets (process.exitCode, which `main` returns) is the test's own again afterwards.
 */
export async function runInProcess(args: string[]): Promise<CliResult> {
  if (busy) throw new Error('runInProcess: one call at a time (await the previous one)');
  const { main } = await import('../../src/cli/main.ts');
  captureOutput();
  const before = {
    exitCode: process.exitCode,
    sigint: process.listenerCount('SIGINT'),
    cwd: process.cwd(),
    env: { ...process.env },
  };
  process.exitCode = undefined;
  const sink: Sink = { stdout: '', stderr: '', open: true };
  busy = true;
  try {
    const code = await sinks.run(sink, () => main(args));
    const leaks = [
      process.listenerCount('SIGINT') !== before.sigint && 'a SIGINT handler',
      process.cwd() !== before.cwd && `the working directory (${process.cwd()})`,
      envChanged(before.env) && 'process.env',
    ].filter((l) => l !== false);
    if (leaks.length > 0)
      throw new Error(`longtail ${args.join(' ')} left a process-wide trace: ${leaks.join(', ')}`);
    return { code, stdout: sink.stdout, stderr: sink.stderr };
  } finally {
    sink.open = false;
    busy = false;
    process.exitCode = before.exitCode;
  }
}
