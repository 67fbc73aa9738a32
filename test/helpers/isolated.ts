import { spawnSync } from 'node:child_process';

/**
 * Runs an ES module snippet (it may import .ts files by absolute path) in a child Node process with
 * a time limit, so a test of something that could hang or eat memory cannot take the run with it.
 * The default limit is generous: starting Node with tsx took over 10 s at load average 25, and a
 * watchdog that fires on a slow start reports a hang that is not there.
 */
export function runIsolated(code: string, opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
    encoding: 'utf8',
    timeout: opts.timeoutMs ?? 60_000,
    env: { ...process.env, ...opts.env },
  });
  const timedOut = (r.error as NodeJS.ErrnoException | undefined)?.code === 'ETIMEDOUT';
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, timedOut };
}
