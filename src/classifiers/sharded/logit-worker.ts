/**
 * A worker of the evaluation pool (logit-threads.ts): per method, the packed weight shared by the
 * main thread; per block, the logits of its row range written into the shared output, then the
 * control block's counter raised. Only the addon's product and plain TypeScript run here (no
 * tfjs backend is started).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { LinearRows } from '../linear-ops.ts';
import { CTL, JOBS_DONE, type LogitJob, type SyncBuffers, writeError } from './head-protocol.ts';

const { sync } = workerData as { sync: SyncBuffers };
const sessions = new Map<number, { rows: LinearRows; C: number; d: number }>();

parentPort!.on('message', (job: LogitJob) => {
  try {
    if (job.kind === 'open') {
      const rows = LinearRows.create(job.spec, job.C, job.d, job.packed);
      if (rows === null) throw new Error('logit worker: the packed product does not run in this thread');
      sessions.set(job.id, { rows, C: job.C, d: job.d });
    } else if (job.kind === 'close') {
      sessions.delete(job.id);
    } else {
      const s = sessions.get(job.id);
      if (!s) throw new Error(`logit worker: no session ${job.id}`);
      const { lo, hi } = job;
      s.rows.compute(job.x.subarray(lo * s.d, hi * s.d), hi - lo, job.out, lo * s.C);
      Atomics.add(sync.ctl, JOBS_DONE, 1);
      Atomics.notify(sync.ctl, JOBS_DONE);
    }
  } catch (e) {
    // Stopped by the main thread: nothing to report.
    if (Atomics.load(sync.ctl, CTL.error) !== 0) return;
    writeError(sync, e instanceof Error ? (e.stack ?? e.message) : String(e));
  }
});
