/**
 * The data of a report's live section (src/report/live/): the test logits of every method, from
 * which the page recomputes the table, per-class accuracy, confusion and calibration when a knob
 * moves. Built at report time from the FeatureSet and the trained classifiers still in memory.
 *
 * Compact: logits as float16 residuals under a float32 row offset (report/live/math.ts:
 * encodeRows). The stage-1 classifier's base logits z = f . W^T (no bias) are embedded once and
 * Joint, tau-norm and logit adjustment are derived from them on the page, exactly as the CLI
 * computes them (classifiers/joint.ts, tau-norm.ts, logit-adjust.ts); every other method's logits
 * are embedded as they are. Bounded: when every test row would exceed `budgetBytes`, a stratified
 * subsample (each class in proportion to its test count, seeded), the same rows for every method,
 * and logits are computed for those rows only, a chunk of rows at a time. When the budget leaves
 * fewer than MIN_LIVE_ROWS_PER_CLASS rows a class, the page hides its per-class views and the
 * subsample stops at LIVE_ROWS_WITHOUT_PER_CLASS rows (what the table needs).
 */

import { linearLogits, rowNorms } from '../classifiers/linear-ops.ts';
import type { MethodName } from '../classifiers/registry.ts';
import type { Stage2Classifier } from '../classifiers/types.ts';
import type { DeployCalibration } from '../eval/calibration.ts';
import type { ShotThresholds } from '../eval/shot-splits.ts';
import { type FeatureSet, featureRows } from '../features/feature-set.ts';
import { createRng } from '../random/rng.ts';
import {
  LIVE_BBSE_MAX_CLASSES,
  LIVE_ROWS_WITHOUT_PER_CLASS,
  type LiveArray,
  type LiveCalibration,
  type LiveData,
  type LiveKind,
  type LiveMethod,
  MIN_LIVE_ROWS_PER_CLASS,
} from '../report/live/data.ts';
import { countLabels, encodeRows } from '../report/live/math.ts';
import { methodColour } from '../report/palette.ts';
import { logPrior } from '../sampling/probabilities.ts';

/** Default bytes of embedded numbers (about 4/3 of it in the page, as base64). */
export const DEFAULT_LIVE_BUDGET = 8 * 1024 * 1024;

export interface LiveOptions {
  /** Bytes of embedded logits and labels at most (default DEFAULT_LIVE_BUDGET). */
  budgetBytes?: number;
  /** Seed of the subsample's draw (default 0). */
  seed?: number;
  /** Rows per chunk of logits (default 2048). */
  chunkRows?: number;
  /** Rows at most when the per-class views are hidden (default LIVE_ROWS_WITHOUT_PER_CLASS). */
  rowsWithoutPerClass?: number;
  /** Each method's calibration (stage 2's), for the page's estimated-prior correction; counted in the budget. */
  calibrations?: ReadonlyMap<string, DeployCalibration>;
}

const b64 = (a: Float32Array | Uint16Array | Int32Array) =>
  Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');

/**
 * k indices into a test set with labels `labels`, stratified: class c gets floor(k n_c / n) rows,
 * the rest by largest remainder (ties in a seeded random order of the classes); which rows is a
 * seeded draw. Sorted.
 */
export function stratifiedRows(labels: Int32Array, C: number, k: number, seed = 0): Int32Array {
  const n = labels.length;
  if (k >= n) return Int32Array.from({ length: n }, (_, i) => i);
  const byClass: number[][] = Array.from({ length: C }, () => []);
  for (let i = 0; i < n; i++) byClass[labels[i]!]!.push(i);
  const exact = byClass.map((b) => (k * b.length) / n);
  const quota = exact.map(Math.floor);
  let left = k - quota.reduce((a, b) => a + b, 0);
  // Ties (e.g. every class at 0.6 of a row when k < C) go by a seeded shuffle, not by class index:
  // the index order is often the head-to-tail order, and the tail would get nothing.
  const tieRank = createRng(seed, 0x11fe, -1).permutation(C);
  const order = exact
    .map((v, c) => [v - Math.floor(v), c] as const)
    .sort((a, b) => b[0] - a[0] || tieRank[a[1]]! - tieRank[b[1]]!);
  for (const [, c] of order) {
    if (left === 0) break;
    if (quota[c]! < byClass[c]!.length) {
      quota[c]!++;
      left--;
    }
  }
  const out: number[] = [];
  byClass.forEach((pool, c) => {
    const perm = createRng(seed, 0x11fe, c).permutation(pool.length);
    for (let j = 0; j < quota[c]!; j++) out.push(pool[perm[j]!]!);
  });
  return Int32Array.from(out.sort((a, b) => a - b));
}

/** How the page gets a method's logits (report/live/data.ts: LiveKind). */
function kindOf(method: string, hasBase: boolean): LiveKind {
  if (!hasBase) return 'stored';
  if (method === 'joint' || method === 'tau-norm' || method === 'logit-adjust') return method;
  return 'stored';
}

/**
 * The live section's data for a run's methods (in the results' order), or null when not even one
 * row fits the budget.
 */
export function liveReportData(
  fs: FeatureSet,
  classifiers: ReadonlyMap<MethodName, Stage2Classifier>,
  methods: readonly { method: string; label: string; tuned: { value: number } | null }[],
  thresholds: ShotThresholds,
  opts: LiveOptions = {},
): LiveData | null {
  const C = fs.numClasses;
  const d = fs.dim;
  const n = fs.test.labels.length;
  const budget = opts.budgetBytes ?? DEFAULT_LIVE_BUDGET;
  const chunk = Math.max(1, opts.chunkRows ?? 2048);
  const base = fs.classifier;
  const plan = methods
    .filter((m) => classifiers.has(m.method))
    .map((m) => ({ ...m, kind: kindOf(m.method, base !== null) }));
  const stored = plan.filter((m) => m.kind === 'stored');
  const hasBase = base !== null && plan.some((m) => m.kind !== 'stored');
  const arrays = stored.length + (hasBase ? 1 : 0);
  const perRow = arrays * (2 * C + 4) + 4; // halves, offset, label
  // Calibrations: BCTS biases and, up to LIVE_BBSE_MAX_CLASSES, BBSE's validation counts; their
  // bytes come out of the budget (biases as JSON, at most 24 characters a number).
  const cals = new Map<string, LiveCalibration>();
  let calBytes = 0;
  for (const m of plan) {
    const cal = opts.calibrations?.get(m.method);
    if (!cal) continue;
    const pairs = cal.valConfusion && C <= LIVE_BBSE_MAX_CLASSES ? cal.valConfusion.pairs : null;
    cals.set(m.method, {
      temperature: cal.temperature,
      bias: cal.bias ? [...cal.bias] : null,
      valConfusion: pairs ? b64(pairs) : null,
    });
    calBytes += (cal.bias ? 24 * C : 0) + (pairs ? pairs.byteLength : 0);
  }
  const sourcePrior =
    [...(opts.calibrations?.values() ?? [])].find((c) => c.sourcePrior)?.sourcePrior ?? null;
  if (sourcePrior) calBytes += 24 * C;
  let k = Math.min(n, Math.floor((budget - calBytes) / perRow));
  if (k < 1 || plan.length === 0) return null;
  // Too few rows a class for the per-class views (report.html hides them): only the table and the
  // reliability diagram remain, and they need no more than LIVE_ROWS_WITHOUT_PER_CLASS.
  if (k / C < MIN_LIVE_ROWS_PER_CLASS)
    k = Math.min(k, opts.rowsWithoutPerClass ?? LIVE_ROWS_WITHOUT_PER_CLASS);
  const rows = stratifiedRows(fs.test.labels, C, k, opts.seed ?? 0);

  // Every embedded array, filled a chunk of rows at a time: [k] offsets and [k, C] halves.
  const outs = new Map<string, { offsets: Float32Array; halves: Uint16Array }>();
  const targets: { key: string; logits: (f: Float32Array, m: number) => Float32Array }[] = [];
  if (hasBase) targets.push({ key: '', logits: (f, m) => linearLogits(f, m, d, base.weight, null, C) });
  for (const m of stored) {
    const clf = classifiers.get(m.method)!;
    targets.push({ key: m.method, logits: (f, r) => clf.logits(f, r) });
  }
  for (const t of targets) outs.set(t.key, { offsets: new Float32Array(k), halves: new Uint16Array(k * C) });
  const feats = new Float32Array(Math.min(chunk, k) * d);
  for (let s = 0; s < k; s += chunk) {
    const m = Math.min(chunk, k - s);
    for (let j = 0; j < m; j++) {
      const r = rows[s + j]!;
      feats.set(featureRows(fs.test, d, r, 1), j * d);
    }
    const f = feats.subarray(0, m * d); // [m, d]
    for (const t of targets) {
      const enc = encodeRows(t.logits(f, m), m, C); // [m, C]
      const o = outs.get(t.key)!;
      o.offsets.set(enc.offsets, s);
      o.halves.set(enc.halves, s * C);
    }
  }
  const arr = (key: string): LiveArray => {
    const o = outs.get(key)!;
    return { offsets: b64(o.offsets), halves: b64(o.halves) };
  };
  const labels = Int32Array.from(rows, (r) => fs.test.labels[r]!);
  const liveMethods: LiveMethod[] = plan.map((m) => ({
    method: m.method,
    label: m.label,
    colour: methodColour(m.method),
    kind: m.kind,
    tau: m.kind === 'tau-norm' || m.kind === 'logit-adjust' ? (m.tuned?.value ?? 1) : null,
    logits: m.kind === 'stored' ? arr(m.method) : null,
    ...(opts.calibrations ? { calibration: cals.get(m.method) ?? null } : {}),
  }));
  return {
    version: 1,
    numClasses: C,
    classNames: fs.classNames,
    trainCounts: fs.trainCounts,
    testCounts: Array.from(countLabels(fs.test.labels, C)),
    thresholds: { many: thresholds.many, few: thresholds.few },
    nTest: n,
    k,
    labels: b64(labels),
    base: hasBase
      ? {
          z: arr(''),
          bias: Array.from(base.bias),
          norms: rowNorms(base.weight, C, d),
          logPrior: fs.trainCounts.every((v) => v > 0) ? Array.from(logPrior(fs.trainCounts)) : null,
        }
      : null,
    methods: liveMethods,
    ...(opts.calibrations ? { sourcePrior: sourcePrior ? [...sourcePrior] : null } : {}),
  };
}
