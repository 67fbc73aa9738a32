/**
 * Every stage-2 classifier folded into one plain linear layer (with, for NCM, the feature
 * transform it needs), recorded in the run folder as `classifiers.npz` + `classifiers.json`, so
 * a trained model can be used and exported without re-running stage 2.
 */
import { existsSync, readFileSync } from 'node:fs';
import { relative, resolve } from 'node:path';
import type { MethodName } from '../classifiers/registry.ts';
import type { FeatureTransform, FoldedLinear, Stage2Classifier } from '../classifiers/types.ts';
import { ConfigError, DataError } from '../errors.ts';
import { writeJsonAtomic } from '../io/atomic.ts';
import { type ArraysToWrite, readNpz, writeNpz } from '../io/npy.ts';
import { backboneIdentityFile, fileSha256, RUN_FILES, runFile } from '../io/run-folder.ts';

export interface FoldedRecord {
  /** Folder holding the stage-1 model (best.npz, config.json), relative to this run; null for a feature-file run. */
  stage1Run: string | null;
  /** SHA-256 of the backbone's identity file these classifiers were trained on: the stage-1 run's best.npz, or its .onnx (null for a feature file). */
  backboneSha256: string | null;
  classNames: string[];
  dim: number;
  methods: Record<string, { transform: FeatureTransform['kind'] }>;
}

export function saveFolded(
  outDir: string,
  classifiers: Map<MethodName, Stage2Classifier>,
  info: { stage1Run: string | null; backboneSha256: string | null; classNames: string[]; dim: number },
): void {
  const arrays: ArraysToWrite = {};
  const methods: FoldedRecord['methods'] = {};
  for (const [name, clf] of classifiers) {
    const f = clf.folded();
    arrays[`${name}/weight`] = { data: f.weight, shape: [clf.numClasses, clf.dim] };
    arrays[`${name}/bias`] = { data: f.bias, shape: [clf.numClasses] };
    if (f.transform.kind === 'cl2n') arrays[`${name}/mean`] = { data: f.transform.mean, shape: [clf.dim] };
    methods[name] = { transform: f.transform.kind };
  }
  writeNpz(runFile(outDir, 'classifiers'), arrays);
  const record: FoldedRecord = {
    stage1Run: info.stage1Run === null ? null : relative(resolve(outDir), resolve(info.stage1Run)) || '.',
    backboneSha256: info.backboneSha256,
    classNames: info.classNames,
    dim: info.dim,
    methods,
  };
  writeJsonAtomic(runFile(outDir, 'classifiersRecord'), record);
}

export interface LoadedFolded {
  record: FoldedRecord;
  layer: FoldedLinear;
  /** Absolute folder of the stage-1 model, or null. */
  stage1Dir: string | null;
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
  return { backboneSha256: null, ...r } as FoldedRecord;
}

/**
 * Reads one method's folded layer from a run folder (or its stage2/), and checks that the stage-1
 * backbone it was trained on is still the one in that run (same best.npz): a head trained on one
 * backbone and used on another predicts the wrong classes.
 */
export function loadFolded(runDir: string, method: string): LoadedFolded {
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
  // An unknown transform would otherwise fall through to the raw features and change every
  // prediction without a word (a hand-edited or newer record).
  if (!TRANSFORMS.includes(m.transform as FeatureTransform['kind'])) {
    throw new DataError(
      `${jsonPath}: methods.${method}.transform is ${JSON.stringify(m.transform) ?? 'missing'}; expected one of ${TRANSFORMS.join(', ')}`,
    );
  }
  const stage1Dir = record.stage1Run === null ? null : resolve(dir, record.stage1Run);
  if (stage1Dir !== null && record.backboneSha256 !== null) {
    const best = backboneIdentityFile(stage1Dir);
    const now = existsSync(best) ? fileSha256(best) : 'missing';
    if (now !== record.backboneSha256) {
      throw new DataError(
        `${dir}: its classifiers were trained on the backbone ${best} had then (sha256 ${record.backboneSha256.slice(0, 12)}), ` +
          `which has since ${now === 'missing' ? 'been removed' : `changed (now ${now.slice(0, 12)})`}; run \`longtail retrain --run ${stage1Dir}\` again`,
      );
    }
  }
  const arrays = readNpz(npzPath);
  const get = (k: string) => {
    const a = arrays.get(`${method}/${k}`);
    if (!a || !(a.data instanceof Float32Array))
      throw new DataError(`${npzPath}: missing or non-float ${method}/${k}`);
    return a.data;
  };
  const transform: FeatureTransform =
    m.transform === 'cl2n' ? { kind: 'cl2n', mean: get('mean') } : { kind: m.transform };
  return { record, layer: { weight: get('weight'), bias: get('bias'), transform }, stage1Dir };
}
