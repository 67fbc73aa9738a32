/**
 * Every stage-2 classifier folded into one plain linear layer (with, for NCM, the feature
 * transform it needs), recorded in the run folder as `classifiers.npz` + `classifiers.json`, so
 * a trained model can be used and exported without re-running stage 2.
 */
import { existsSync, readFileSync } from 'node:fs';
import { relative, resolve } from 'node:path';
import { rowNorms } from '../classifiers/linear-ops.ts';
import type { MethodName } from '../classifiers/registry.ts';
import type { FeatureTransform, FoldedLinear, Stage2Classifier } from '../classifiers/types.ts';
import { ConfigError, DataError } from '../errors.ts';
import { type DeployCalibration, denseConfusion } from '../eval/calibration.ts';
import { writeJsonAtomic } from '../io/atomic.ts';
import { type ArraysToWrite, readNpz, writeNpz } from '../io/npy.ts';
import { backboneIdentityFile, fileSha256, RUN_FILES, runFile } from '../io/run-folder.ts';

/** classifiers.json's layout; records before it have no `version` (their NCM heads are told apart by their numbers). */
export const FOLDED_VERSION = 1;

export interface FoldedRecord {
  /** FOLDED_VERSION; absent in records written before 2026-12-05. */
  version?: number;
  /** Folder holding the stage-1 model (best.npz, config.json), relative to this run; null for a feature-file run. */
  stage1Run: string | null;
  /** SHA-256 of the backbone's identity file these classifiers were trained on: the stage-1 run's best.npz, or its .onnx (null for a feature file). */
  backboneSha256: string | null;
  classNames: string[];
  dim: number;
  /** Training images per class (absent in records written before calibration): `export --target-prior train`. */
  trainCounts?: number[];
  /**
   * Per method: its feature transform, and (absent in older records) the temperature fitted on
   * validation and the prior the calibrated scores refer to (validation's; null: uniform), and
   * BCTS's per-class biases `calibrationBias` (absent for temperature scaling and in older records).
   * BBSE's validation counts are in classifiers.npz as `<method>/val_confusion`.
   */
  methods: Record<
    string,
    {
      transform: FeatureTransform['kind'];
      /**
       * How the layer scores: `distance` = NCM's -||T(f) - w_c|| (+ b); absent = T(f) W^T + b.
       * Records before it have no field; an NCM layer among them is read by its shape (readOldNcm).
       */
      score?: 'distance';
      temperature?: number;
      calibrationBias?: number[];
      sourcePrior?: number[] | null;
    }
  >;
}

/** A head's calibration as deployed: T and BCTS's biases (already folded into the layer), source prior, BBSE's counts. */
export interface FoldedCalibration {
  temperature: number;
  /** BCTS's per-class biases, or null (temperature scaling, none, an older record). */
  bias: number[] | null;
  sourcePrior: number[];
  /** counts[pred * C + true] on validation, or null (no validation split, or an older run). */
  valConfusion: Float32Array | null;
}

export function saveFolded(
  outDir: string,
  classifiers: Map<MethodName, Stage2Classifier>,
  info: {
    stage1Run: string | null;
    backboneSha256: string | null;
    classNames: string[];
    dim: number;
    trainCounts?: number[];
    calibrations?: Map<MethodName, DeployCalibration>;
  },
): void {
  const arrays: ArraysToWrite = {};
  const methods: FoldedRecord['methods'] = {};
  for (const [name, clf] of classifiers) {
    const f = clf.folded();
    arrays[`${name}/weight`] = { data: f.weight, shape: [clf.numClasses, clf.dim] };
    arrays[`${name}/bias`] = { data: f.bias, shape: [clf.numClasses] };
    if (f.transform.kind === 'cl2n') arrays[`${name}/mean`] = { data: f.transform.mean, shape: [clf.dim] };
    const cal = info.calibrations?.get(name);
    methods[name] = {
      transform: f.transform.kind,
      ...(f.distance ? { score: 'distance' as const } : {}),
      ...(cal ? { temperature: cal.temperature, sourcePrior: cal.sourcePrior } : {}),
      ...(cal?.bias ? { calibrationBias: cal.bias } : {}),
    };
    if (cal?.valConfusion)
      arrays[`${name}/val_confusion`] = {
        data: denseConfusion(cal.valConfusion, new Float32Array(clf.numClasses * clf.numClasses)),
        shape: [clf.numClasses, clf.numClasses],
      };
  }
  writeNpz(runFile(outDir, 'classifiers'), arrays);
  const record: FoldedRecord = {
    version: FOLDED_VERSION,
    stage1Run: info.stage1Run === null ? null : relative(resolve(outDir), resolve(info.stage1Run)) || '.',
    backboneSha256: info.backboneSha256,
    classNames: info.classNames,
    dim: info.dim,
    ...(info.trainCounts ? { trainCounts: info.trainCounts } : {}),
    methods,
  };
  writeJsonAtomic(runFile(outDir, 'classifiersRecord'), record);
}

export interface LoadedFolded {
  record: FoldedRecord;
  /** The method's layer with its temperature folded in (W / T, b / T). */
  layer: FoldedLinear;
  calibration: FoldedCalibration;
  /** Absolute folder of the stage-1 model, or null. */
  stage1Dir: string | null;
  /** One line for the user about this head (an older NCM head that still works), or null. */
  warning: string | null;
}

/**
 * The folder holding a run's stage-2 classifiers: the run itself (demo, or a retrain's own folder),
 * else its `stage2/` (where `retrain --run DIR` keeps them).
 */
export function classifierFolder(runDir: string): string {
  if (existsSync(runFile(runDir, 'classifiersRecord'))) return runDir;
  const inner = runFile(runDir, 'stage2');
  if (existsSync(runFile(inner, 'classifiersRecord'))) return inner;
  throw new DataError(
    `${runDir}: no stage-2 classifiers here or in ${inner} (${RUN_FILES.classifiersRecord}); run \`longtail retrain --run ${runDir}\` (or \`longtail demo\`) first`,
  );
}

/** The feature transforms a folded layer may name (FeatureTransform's kinds). */
const TRANSFORMS: readonly FeatureTransform['kind'][] = ['none', 'l2n', 'cl2n'];

function readRecord(path: string): FoldedRecord {
  let r: Partial<FoldedRecord>;
  try {
    r = JSON.parse(readFileSync(path, 'utf8')) as Partial<FoldedRecord>;
  } catch (e) {
    throw new DataError(`${path}: not valid JSON (${(e as Error).message.split('\n')[0]})`);
  }
  const ok =
    r !== null &&
    typeof r === 'object' &&
    (r.stage1Run === null || typeof r.stage1Run === 'string') &&
    Array.isArray(r.classNames) &&
    Number.isInteger(r.dim) &&
    typeof r.methods === 'object' &&
    r.methods !== null;
  if (!ok)
    throw new DataError(
      `${path}: not a longtail classifier record (needs stage1Run, classNames, dim, methods)`,
    );
  if (r.version !== undefined && r.version !== FOLDED_VERSION)
    throw new DataError(
      `${path}: version is ${JSON.stringify(r.version)}; this longtail reads version ${FOLDED_VERSION} (or none: an older record); a newer longtail wrote it?`,
    );
  return { backboneSha256: null, ...r } as FoldedRecord;
}

/**
 * Reads one method's folded layer from a run folder (or its stage2/), and checks that the stage-1
 * backbone it was trained on is still the one in that run (same best.npz): a head trained on one
 * backbone and used on another predicts the wrong classes.
 */
export function loadFolded(runDir: string, method: string, backboneFile?: string): LoadedFolded {
  const dir = classifierFolder(runDir);
  const jsonPath = runFile(dir, 'classifiersRecord');
  const npzPath = runFile(dir, 'classifiers');
  if (!existsSync(npzPath))
    throw new DataError(`${dir}: ${RUN_FILES.classifiersRecord} without ${RUN_FILES.classifiers}`);
  const record = readRecord(jsonPath);
  const m = Object.hasOwn(record.methods, method) ? record.methods[method] : undefined;
  if (m === undefined) {
    throw new ConfigError(
      `${dir}: has no '${method}' classifier; this run has: ${Object.keys(record.methods).join(', ')}`,
    );
  }
  // A hand-edited or damaged entry: null, a number, a list.
  if (m === null || typeof m !== 'object' || Array.isArray(m)) {
    throw new DataError(`${jsonPath}: methods.${method} is ${JSON.stringify(m)}; expected an object`);
  }
  // An unknown transform would otherwise fall through to the raw features and change every
  // prediction without a word (a hand-edited or newer record).
  if (!TRANSFORMS.includes(m.transform as FeatureTransform['kind'])) {
    throw new DataError(
      `${jsonPath}: methods.${method}.transform is ${JSON.stringify(m.transform) ?? 'missing'}; expected one of ${TRANSFORMS.join(', ')}`,
    );
  }
  const stage1Dir = record.stage1Run === null ? null : resolve(dir, record.stage1Run);
  if (stage1Dir !== null && record.backboneSha256 !== null) {
    const best = backboneIdentityFile(stage1Dir, backboneFile);
    const now = existsSync(best) ? fileSha256(best) : 'missing';
    if (now !== record.backboneSha256) {
      throw new DataError(
        `${dir}: its classifiers were trained on the backbone ${best} had then (sha256 ${record.backboneSha256.slice(0, 12)}), ` +
          `which has since ${now === 'missing' ? 'been removed' : `changed (now ${now.slice(0, 12)})`}; run \`longtail retrain --run ${stage1Dir}\` again`,
      );
    }
  }
  // The calibration folded into the layer: softmax(T(f) W^T / T + b / T + b_cal) are the calibrated probabilities.
  // 0, a negative, a string or NaN would turn every probability into NaN.
  const field = `${jsonPath}: methods.${method}`;
  if (
    m.temperature !== undefined &&
    !(typeof m.temperature === 'number' && Number.isFinite(m.temperature) && m.temperature > 0)
  ) {
    throw new DataError(
      `${field}.temperature is ${JSON.stringify(m.temperature)}; expected a finite number above 0 (or none: 1)`,
    );
  }
  const T = m.temperature ?? 1;
  const C = record.classNames.length;
  if (C < 1 || !record.classNames.every((n) => typeof n === 'string')) {
    throw new DataError(`${jsonPath}: classNames must be a non-empty list of strings`);
  }
  if (record.dim < 1)
    throw new DataError(`${jsonPath}: dim is ${record.dim}; expected a whole number above 0`);
  checkCounts(record.trainCounts, C, `${jsonPath}: trainCounts`, false);
  if (m.sourcePrior !== undefined && m.sourcePrior !== null)
    checkCounts(m.sourcePrior, C, `${field}.sourcePrior`, true);
  // A wrong length or a NaN would shift every score (or make it NaN) with exit 0.
  const cb = m.calibrationBias;
  if (cb !== undefined && !(Array.isArray(cb) && cb.length === C && cb.every((v) => Number.isFinite(v)))) {
    const got = Array.isArray(cb) ? `${cb.length} entries` : JSON.stringify(cb);
    throw new DataError(
      `${field}.calibrationBias is ${got}; expected a list of ${C} finite numbers (one per class of classNames)`,
    );
  }
  const arrays = readNpz(npzPath);
  const get = (k: string, shape: number[]) => {
    const a = arrays.get(`${method}/${k}`);
    if (!a || !(a.data instanceof Float32Array))
      throw new DataError(`${npzPath}: missing or non-float ${method}/${k}`);
    if (a.shape.length !== shape.length || a.shape.some((s, i) => s !== shape[i])) {
      throw new DataError(
        `${npzPath}: ${method}/${k} has shape (${a.shape.join(', ')}) but ${jsonPath} (classNames: ${C}, dim: ${record.dim}) needs (${shape.join(', ')})`,
      );
    }
    return a.data;
  };
  const d = record.dim;
  const transform: FeatureTransform =
    m.transform === 'cl2n' ? { kind: 'cl2n', mean: get('mean', [d]) } : { kind: m.transform };
  const conf = arrays.has(`${method}/val_confusion`) ? get('val_confusion', [C, C]) : null;
  const calibration: FoldedCalibration = {
    temperature: T,
    bias: cb ?? null,
    sourcePrior: m.sourcePrior ?? new Array<number>(C).fill(1 / C),
    valConfusion: conf,
  };
  if (m.score !== undefined && m.score !== 'distance')
    throw new DataError(
      `${field}.score is ${JSON.stringify(m.score)}; expected "distance" or no field (a linear layer); a newer longtail wrote it?`,
    );
  const w = get('weight', [C, d]);
  const b = get('bias', [C]);
  // Only an unversioned record can hold an NCM head without `score` (every version-1 NCM head has one).
  const old =
    record.version === undefined && m.score === undefined && method === 'ncm' ? readOldNcm(w, b, C, d) : null;
  const calBias = (v: number, c: number) => v / T + (cb ? cb[c]! : 0);
  if (m.score === 'distance' || old === 'squared') {
    // b / T - ||x - c|| / T + b_cal. A 'squared' head (W = 2c, b = -||c||^2) was calibrated on
    // -||x - c|| by its run: read back as that distance, it gives the run's own probabilities.
    const cent = old === 'squared' ? w.map((v) => v / 2) : w;
    const sqNorms = Float32Array.from(rowNorms(cent, C, d), (v) => v * v);
    const bias = old === 'squared' ? new Float32Array(C).map(calBias) : b.map(calBias);
    const layer: FoldedLinear = { weight: cent, bias, transform, distance: { sqNorms, scale: 1 / T } };
    return { record, layer, calibration, stage1Dir, warning: null };
  }
  const weight = w.map((v) => v / T);
  const bias = b.map(calBias);
  const warning =
    old === 'half-squared'
      ? `${dir}: this NCM head scores x.c - ||c||^2/2 (longtail before the distance score), whose calibration is worse; ${stage1Dir === null ? 'run `longtail retrain --features` on its feature file again' : `run \`longtail retrain --run ${stage1Dir}\``} for the distance score`
      : null;
  return { record, layer: { weight, bias, transform }, calibration, stage1Dir, warning };
}

/**
 * NCM heads written before `score` existed, recognised by their numbers (no other method's bias
 * is tied to its weights' norms): 'squared' = W 2c, b -||c||^2 (calibrated on -||x - c||, so it
 * deployed other probabilities than its run's), 'half-squared' = W c, b -||c||^2/2 (linear,
 * calibrated on that score: correct as it is). null: any other layer.
 */
export function readOldNcm(
  w: Float32Array,
  b: Float32Array,
  C: number,
  d: number,
): 'squared' | 'half-squared' | null {
  const sq = rowNorms(w, C, d).map((v) => v * v);
  if (sq.every((v) => v === 0)) return null;
  // Float32 rounding of the stored values: a few ulps of ||c||^2.
  const near = (k: number) => sq.every((v, c) => Math.abs(b[c]! + v / k) <= 1e-5 * (1 + v));
  return near(4) ? 'squared' : near(2) ? 'half-squared' : null;
}

/**
 * Refuses a per-class list of classifiers.json (trainCounts, a method's sourcePrior) that is not
 * `C` finite numbers >= 0 (and, for a prior, summing above 0): a wrong length or a NaN would
 * otherwise give NaN probabilities with exit 0.
 */
function checkCounts(v: unknown, C: number, where: string, prior: boolean): void {
  if (v === undefined && !prior) return;
  if (!Array.isArray(v) || v.length !== C) {
    const got = Array.isArray(v) ? `${v.length} entries` : JSON.stringify(v);
    throw new DataError(`${where} is ${got}; expected a list of ${C} numbers (one per class of classNames)`);
  }
  const bad = v.findIndex((x) => typeof x !== 'number' || !Number.isFinite(x) || x < 0);
  if (bad >= 0)
    throw new DataError(`${where}[${bad}] is ${JSON.stringify(v[bad])}; expected a finite number >= 0`);
  if (prior && !(v as number[]).some((x) => x > 0))
    throw new DataError(`${where} sums to 0; expected at least one entry above 0`);
}
