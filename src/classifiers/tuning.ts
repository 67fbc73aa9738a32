/**
 * Choosing a method's parameter on the balanced validation set (never the test set), keeping the
 * whole sweep for the report. Shared by every method with a `tuning` entry (tau-norm's tau, logit
 * adjustment's tau).
 */
import { headKernels } from '../backend/native-head.ts';
import { defaultChunkRows, splitAccuracies } from '../eval/metrics.ts';
import type { ShotThresholds } from '../eval/shot-splits.ts';
import { type FeatureSet, type FeatureSplit, featureRows } from '../features/feature-set.ts';
import { linearLogits } from './linear-ops.ts';
import { logitSession } from './sharded/logit-threads.ts';
import type { Stage2Context, SweepPoint, TunedParam, TuningSpec } from './types.ts';

/** 0, 0.1, ..., 2.0: the paper's tau grid (docs/methods.md). */
export const UNIT_GRID_0_2 = Array.from({ length: 21 }, (_, i) => Math.round(i * 10) / 100);

/** Per value of the parameter, a column-wise affine map of base logits: z[:, c] * scale[c] + shift[c]. */
export type ColumnMap = (value: number) => { scale?: Float32Array; shift?: Float32Array };

/**
 * The sweep of a method whose logits are base logits f W^T + b, rescaled and shifted per class by
 * the parameter: one matrix product per block of rows, then a cheap column map and argmax per
 * value. Blocks of `chunkRows` rows (default defaultChunkRows(C, d), 8 MiB of logits or features):
 * a split's [n, C] logits never exist whole, and each row's argmax, so the sweep, is the same for
 * any block size. The products are split by rows over `threads` (logit-threads.ts: the same bits).
 */
export function columnSweep(
  fs: FeatureSet,
  layer: { weight: Float32Array; bias: Float32Array | null },
  grid: readonly number[],
  map: ColumnMap,
  thresholds?: ShotThresholds,
  chunkRows: number = defaultChunkRows(fs.numClasses, fs.dim),
  threads = 1,
): SweepPoint[] {
  const C = fs.numClasses;
  const d = fs.dim;
  const session = logitSession({ transform: { kind: 'none' }, ...layer }, C, d, threads);
  const maps = grid.map((v) => map(v));
  const kernels = headKernels();
  const step = Math.max(1, Math.floor(chunkRows));
  const on = (sp: FeatureSplit) => {
    const n = sp.labels.length;
    const preds = grid.map(() => new Int32Array(n)); // [grid][n]
    for (let s = 0; s < n; s += step) {
      const m = Math.min(step, n - s);
      const f = featureRows(sp, d, s, m);
      const z = session ? session.logits(f, m) : linearLogits(f, m, d, layer.weight, layer.bias, C); // [m, C]
      // argmax_c z * scale + shift per grid value, as tfjs's mul, add and argMax (head kernels:
      // native over the block while it is in cache, or the TypeScript loop; the same answers).
      maps.forEach(({ scale, shift }, g) => {
        kernels.argmaxColumns(z, m, C, scale ?? null, shift ?? null, preds[g]!.subarray(s, s + m));
      });
    }
    return preds.map((pred) => splitAccuracies(pred, sp.labels, C, fs.trainCounts, thresholds));
  };
  try {
    const val = fs.val && fs.val.labels.length > 0 ? on(fs.val) : null;
    const test = on(fs.test);
    return grid.map((value, i) => ({ value, val: val ? val[i]! : null, test: test[i]! }));
  } finally {
    session?.close();
  }
}

/**
 * The value to use: the one given, else the best validation accuracy of the sweep (ties go to the
 * first in the grid), else the spec's fallback with a warning.
 */
export function choose(
  method: string,
  spec: TuningSpec,
  sweep: SweepPoint[],
  given: number | undefined,
  warn?: (message: string) => void,
): TunedParam {
  if (given !== undefined) return { param: spec.param, value: given, chosenOn: 'given', sweep };
  if (sweep.length > 0 && sweep[0]!.val !== null) {
    let best = sweep[0]!;
    for (const p of sweep) if (p.val!.overall > best.val!.overall) best = p;
    return { param: spec.param, value: best.value, chosenOn: 'val', sweep };
  }
  warn?.(`${method}: no validation set to choose ${spec.param} on; using ${spec.param} = ${spec.fallback}`);
  return { param: spec.param, value: spec.fallback, chosenOn: 'default', sweep };
}

/** Options of a method tuning one parameter tau on validation (tau-norm, logit adjustment). */
export interface TauTuningOptions {
  /** A fixed tau (skips the choice on the validation set). */
  tau?: number;
  grid?: readonly number[];
  thresholds?: ShotThresholds;
  /** Called when tau must be chosen but there is no validation set (the fallback is used then). */
  warn?: (message: string) => void;
  /** Threads the sweep's products are split over (the results do not depend on it). */
  threads?: number;
}

/** A registry entry's tuning options: the given tau, and the context's thresholds and warn. */
export function tauTuningOptions(ctx: Stage2Context, tau: number | undefined): TauTuningOptions {
  return {
    ...(tau !== undefined ? { tau } : {}),
    ...(ctx.thresholds ? { thresholds: ctx.thresholds } : {}),
    ...(ctx.warn ? { warn: ctx.warn } : {}),
    ...(ctx.threads ? { threads: ctx.threads } : {}),
  };
}
