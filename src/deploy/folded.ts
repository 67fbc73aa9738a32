/**
 * Every stage-2 classifier folded into one plain linear layer (with, for NCM, the feature
 * transform it needs), recorded in the run folder as `classifiers.npz` + `classifiers.json`, so
 * a trained model can be used and exported without re-running stage 2.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import type { MethodName } from '../classifiers/registry.ts';
import type { FeatureTransform, FoldedLinear, Stage2Classifier } from '../classifiers/types.ts';
import { type ArraysToWrite, readNpz, writeNpz } from '../data/npy.ts';
import { ConfigError, DataError } from '../errors.ts';
import { writeJsonAtomic } from '../io/atomic.ts';

export interface FoldedRecord {
  /** Folder holding the stage-1 model (best.npz, config.json), relative to this run; null for a feature-file run. */
  stage1Run: string | null;
  classNames: string[];
  dim: number;
  methods: Record<string, { transform: FeatureTransform['kind'] }>;
}

export function saveFolded(
  outDir: string,
  classifiers: Map<MethodName, Stage2Classifier>,
  info: { stage1Run: string | null; classNames: string[]; dim: number },
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
  writeNpz(join(outDir, 'classifiers.npz'), arrays);
  const record: FoldedRecord = {
    stage1Run: info.stage1Run === null ? null : relative(resolve(outDir), resolve(info.stage1Run)) || '.',
    classNames: info.classNames,
    dim: info.dim,
    methods,
  };
  writeJsonAtomic(join(outDir, 'classifiers.json'), record);
}

export interface LoadedFolded {
  record: FoldedRecord;
  layer: FoldedLinear;
  /** Absolute folder of the stage-1 model, or null. */
  stage1Dir: string | null;
}

/** Reads one method's folded layer from a run folder. */
export function loadFolded(runDir: string, method: string): LoadedFolded {
  const jsonPath = join(runDir, 'classifiers.json');
  const npzPath = join(runDir, 'classifiers.npz');
  if (!existsSync(jsonPath) || !existsSync(npzPath)) {
    throw new DataError(
      `${runDir}: no stage-2 classifiers here (classifiers.json / classifiers.npz); run \`longtail demo\` or \`longtail retrain\` first`,
    );
  }
  const record = JSON.parse(readFileSync(jsonPath, 'utf8')) as FoldedRecord;
  const m = record.methods[method];
  if (m === undefined) {
    throw new ConfigError(
      `${runDir}: has no '${method}' classifier; this run has: ${Object.keys(record.methods).join(', ')}`,
    );
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
  return {
    record,
    layer: { weight: get('weight'), bias: get('bias'), transform },
    stage1Dir: record.stage1Run === null ? null : resolve(runDir, record.stage1Run),
  };
}
