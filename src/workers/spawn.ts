/**
 * Worker threads: a service that runs the entry it is handed and imports none of its users.
 * Callers name their entry beside them, `startWorker(new URL('./my-worker.ts', import.meta.url),
 * data)`; resolving that URL to what runs is done here only.
 *
 * - Compiled (the installed package, dist/): this file is `spawn.js`, the entry's compiled twin
 *   `my-worker.js` sits beside the caller's `.js`, and the worker starts on it directly.
 * - Sources (the repository, run through tsx): Node does not pass tsx's loader on to a worker
 *   thread, so the worker starts in boot.mjs, which registers tsx and then imports the entry.
 */
import { fileURLToPath } from 'node:url';
import { type ResourceLimits, Worker } from 'node:worker_threads';

const COMPILED = import.meta.url.endsWith('.js');

/** The file a worker runs for `entry`: in compiled output the `.js` twin of a `.ts` entry. */
export function workerEntry(entry: URL): URL {
  return COMPILED && entry.pathname.endsWith('.ts') ? new URL(entry.href.replace(/\.ts$/, '.js')) : entry;
}

/**
 * Starts a worker thread on `entry`; the entry reads `workerData` as given (plus `entry`).
 * `resourceLimits` as Node's Worker takes them (the heap's generations).
 */
export function startWorker(
  entry: URL,
  workerData: Record<string, unknown> = {},
  resourceLimits?: ResourceLimits,
): Worker {
  const target = workerEntry(entry);
  const limits = resourceLimits ? { resourceLimits } : {};
  if (COMPILED)
    return new Worker(fileURLToPath(target), {
      workerData: { ...workerData, entry: target.href },
      ...limits,
    });
  const boot = fileURLToPath(new URL('./boot.mjs', import.meta.url));
  return new Worker(boot, { workerData: { ...workerData, entry: target.href }, ...limits });
}
