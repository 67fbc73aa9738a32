import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { initBackend } from '../../backend/backend.ts';
import { nativeHeadKernels } from '../../backend/native-head.ts';
import { createRng } from '../../random/rng.ts';
import { packedLinearSize, specLogits } from '../linear-ops.ts';
import type { LinearLogits } from '../types.ts';
import type { LogitJob } from './head-protocol.ts';
import { EVAL_SPLIT, LogitThreads, logitSession, logitThreads } from './logit-threads.ts';

const packedRuns = nativeHeadKernels() !== null && packedLinearSize(1, 1) > 0;

/** A random spec of every kind the methods use: plain, bias, cl2n / l2n transforms, NCM's distance. */
function randomSpec(seed: number, C: number, d: number): LinearLogits {
  const rng = createRng(seed);
  const w = Float32Array.from({ length: C * d }, () => rng.normal());
  const vec = (n: number) => Float32Array.from({ length: n }, () => rng.normal());
  switch (seed % 4) {
    case 0:
      return { transform: { kind: 'none' }, weight: w, bias: vec(C) };
    case 1:
      return { transform: { kind: 'l2n' }, weight: w, bias: null };
    case 2:
      return {
        transform: { kind: 'cl2n', mean: vec(d) },
        weight: w,
        bias: null,
        sqDistance: Float32Array.from({ length: C }, () => 1 + rng.next()),
      };
    default:
      return { transform: { kind: 'none' }, weight: w, bias: null, sqDistance: vec(C).map((v) => v * v) };
  }
}

describe('logits split by rows over threads', {
  skip: !packedRuns && 'no packed native product here',
}, () => {
  before(async () => {
    await initBackend('wasm');
  });

  it('equal one thread to the bit: every kind of spec, split in 2 and 3, row counts down to 1', () => {
    // 3 threads: blocks of 2 rows split in 2 parts, larger ones in 3.
    const pools = [new LogitThreads(3)];
    try {
      for (let seed = 0; seed < 8; seed++) {
        const rng = createRng(50 + seed);
        // Past the product's tiles: C beyond 12-row strips and 96-row blocks, d beyond 512.
        const C = 1 + rng.int(seed < 4 ? 40 : 200);
        const d = 1 + rng.int(seed % 2 === 0 ? 64 : 700);
        const spec = randomSpec(seed, C, d);
        const single = logitSession(spec, C, d, 1)!;
        for (const pool of pools) {
          const before = pool.jobs;
          let jobs = 0;
          const s = pool.open(spec, C, d)!;
          // The last block smaller than the one before: the session's reused array, cut to size.
          for (const m of [1, 2, 3, 7, 1 + rng.int(300), 2]) {
            jobs += Math.min(pool.threads, m) - 1;
            const f = Float32Array.from({ length: m * d }, () => 2 * rng.normal());
            const want = specLogits(spec, f, m, d, C);
            assert.deepEqual(single.logits(f, m), want, `seed ${seed}, one thread, ${m} rows`);
            assert.deepEqual(s.logits(f, m), want, `seed ${seed}, ${pool.threads} threads, ${m} rows`);
          }
          s.close();
          // The workers computed their share: a row range per worker and block.
          assert.equal(pool.jobs - before, jobs);
        }
      }
    } finally {
      for (const p of pools) p.dispose();
    }
  });

  it('one pool a process, for the thread count asked; none for one thread; two sessions open at once', () => {
    assert.equal(logitThreads(1), null);
    const p = logitThreads(2)!;
    assert.equal(logitThreads(2), p);
    assert.equal(p.threads, 2);
    // The second session gets its own packed weight: interleaved blocks stay right.
    const rng = createRng(9);
    const [a, b] = [randomSpec(0, 30, 20), randomSpec(2, 50, 20)];
    const [sa, sb] = [p.open(a, 30, 20)!, p.open(b, 50, 20)!];
    for (let r = 0; r < 3; r++) {
      const f = Float32Array.from({ length: 9 * 20 }, () => rng.normal());
      assert.deepEqual(sa.logits(f, 9), specLogits(a, f, 9, 20, 30));
      assert.deepEqual(sb.logits(f, 9), specLogits(b, f, 9, 20, 50));
    }
    sa.close();
    sb.close();
    // Through logitSession the pool stops with its last session (its worker's memory goes back),
    // unless told to keep its workers.
    const spec = randomSpec(1, 300, 256);
    const s1 = logitSession(spec, 300, 256, 2)!;
    assert.equal(logitThreads(2), p);
    s1.close();
    assert.throws(() => p.open(spec, 300, 256), /used after dispose/);
    EVAL_SPLIT.keepWorkers = true;
    try {
      const q = logitThreads(2)!;
      logitSession(spec, 300, 256, 2)!.close();
      assert.equal(logitThreads(2), q);
    } finally {
      EVAL_SPLIT.keepWorkers = false;
    }
  });

  it("a worker's failure is reported with its message, and the next call gets a new pool", () => {
    const pool = logitThreads(2)!; // started by the test above
    const C = 5;
    const d = 4;
    const spec = randomSpec(0, C, d);
    const f = Float32Array.from({ length: 4 * d }, (_, i) => i / 7);
    const s = pool.open(spec, C, d)!;
    assert.deepEqual(s.logits(f, 4), specLogits(spec, f, 4, d, C));
    assert.throws(() => s.logits(new Float32Array(3), 1), /3 features for 1 rows of 4/);
    // The worker drops the session behind this thread's back (private access: no public way to
    // break a worker), so its next row job fails there.
    const id = (pool as unknown as { sessions: number }).sessions;
    (pool as unknown as { post(job: LogitJob, k?: number): void }).post({ kind: 'close', id }, 0);
    assert.throws(
      () => s.logits(f, 4),
      new RegExp(`a stage-2 head worker failed: Error: logit worker: no session ${id}`),
    );
    assert.throws(() => pool.open(spec, C, d), /used after dispose/);
    assert.throws(() => s.logits(f, 4), /used after dispose/);
    const again = logitThreads(2)!;
    assert.notEqual(again, pool);
    again.dispose();
  });
});
