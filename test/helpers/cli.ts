import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

/**
 * The `longtail` the tests start: the compiled build scripts/run-tests.mjs makes once per run
 * (LONGTAIL_TEST_CLI), or the checkout's bin/longtail.js (TypeScript through tsx) without it.
 */
export const BIN =
  process.env.LONGTAIL_TEST_CLI ?? join(import.meta.dirname, '..', '..', 'bin', 'longtail.js');

/** Runs the real CLI in a child process. */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    timeout: 300_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
