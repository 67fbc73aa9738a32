/**
 * Worker threads running TypeScript entries: a service that runs the entry it is handed and
 * imports none of its users. Node does not pass tsx's loader on to a worker thread, so every
 * worker starts in boot.mjs, which registers tsx and then imports the entry. Callers name their
 * entry beside them, `startWorker(new URL('./my-worker.ts', import.meta.url), data)`; resolving
 * that URL to what runs is done here only, the one place to adapt for compiled output.
 */
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';

const BOOT = fileURLToPath(new URL('./boot.mjs', import.meta.url));

/** Starts a worker thread on `entry`; the entry reads `workerData` as given (plus `entry`). */
export function startWorker(entry: URL, workerData: Record<string, unknown> = {}): Worker {
  return new Worker(BOOT, { workerData: { ...workerData, entry: entry.href } });
}
