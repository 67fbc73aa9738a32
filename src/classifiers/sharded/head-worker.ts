/**
 * A worker of the class-sharded head training: its own tfjs backend and one class shard; follows
 * the main thread's published steps until told to finish, then writes its rows back.
 */
import { workerData } from 'node:worker_threads';
import { nativeHeadKernels } from '../../backend/native-head.ts';
import { CTL, type HeadBuffers, readStats, waitFor, writeError, writeStats } from './head-protocol.ts';
import { HeadShard, type ShardSpec } from './shard-step.ts';

const { index, spec, backend, buf } = workerData as {
  index: number;
  spec: ShardSpec;
  backend: string;
  buf: HeadBuffers;
};
const FOREVER = 24 * 3600_000;

async function run(): Promise<void> {
  // tfjs only where the TypeScript kernels run (their products are tfjs's): with the native
  // kernels the worker starts without loading it (the larger part of a worker's start).
  if (nativeHeadKernels() === null) await (await import('../../backend/backend.ts')).initBackend(backend);
  const shard = new HeadShard(spec);
  Atomics.add(buf.ctl, CTL.ready, 1);
  Atomics.notify(buf.ctl, CTL.ready);
  const B = buf.batch;
  const d = spec.dim;
  for (let s = 0; ; s++) {
    const published = waitFor(
      buf,
      CTL.published,
      (v) => v >= s + 1 || Atomics.load(buf.ctl, CTL.finish) === 1,
      'the next batch',
      FOREVER,
    );
    if (published < s + 1) break; // finished
    const slot = s % 2;
    const stats = shard.forward(
      // With the features, the product reads the batch's rows from them by index.
      spec.features ? null : buf.x.subarray(slot * B * d, (slot + 1) * B * d),
      buf.labels.subarray(slot * B, (slot + 1) * B),
      buf.rows.subarray(slot * B, (slot + 1) * B),
    );
    writeStats(buf, slot, index, stats);
    Atomics.add(buf.ctl, CTL.arrived, 1);
    Atomics.notify(buf.ctl, CTL.arrived);
    waitFor(buf, CTL.arrived, (v) => v >= buf.shards * (s + 1), `step ${s + 1}`, FOREVER);
    const combined = shard.combine(readStats(buf, slot), B);
    shard.backward(combined.rowScale[index]!, buf.lr[slot]!);
  }
  const st = shard.state();
  const w = spec.hi - spec.lo;
  const out = buf.results[index]!;
  out.set(st.weight, 0);
  out.set(st.bias, w * d);
  if (st.scales) out.set(st.scales, w * d + w);
  shard.dispose();
  Atomics.add(buf.ctl, CTL.done, 1);
  Atomics.notify(buf.ctl, CTL.done);
}

run().catch((e: unknown) => {
  // Stopped by the main thread: nothing to report.
  if (Atomics.load(buf.ctl, CTL.error) !== 0) return;
  writeError(buf, e instanceof Error ? (e.stack ?? e.message) : String(e));
});
