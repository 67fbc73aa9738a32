/**
 * The one loader of a stage-1 run's model (its best validation epoch, `best.npz`), for stage 2,
 * predict and export alike, and the one test of whether stage 1 has finished.
 */
import { existsSync } from 'node:fs';
import { checkContract, type PreprocessContract } from '../data/preprocess.ts';
import { DataError } from '../errors.ts';
import {
  locateExternalBackbone,
  RUN_FILES,
  readExternalBackbone,
  readStage1Summary,
  runFile,
  type Stage1SummaryFile,
} from '../io/run-folder.ts';
import { createModel, disposeModel, loadModelArrays, type Model } from '../models/model.ts';
import { isOnnxBackbone } from '../models/onnx-backbone.ts';
import { loadCheckpoint } from './checkpoint.ts';

/**
 * Loads the best stage-1 model of a run folder. The caller disposes it. An external backbone is
 * found (relative to the run, then where it was, or at `backboneFile`) and checked by hash.
 */
export function loadStage1Model(dir: string, backboneFile?: string): Model {
  const ext = readExternalBackbone(dir);
  if (ext) {
    const contract = stage1Contract(dir, ext);
    const file = locateExternalBackbone(dir, ext, backboneFile);
    const model = createModel(
      { ...ext.spec, options: { ...ext.spec.options, path: file } },
      ext.inputShape,
      ext.numClasses,
      0,
    );
    try {
      if (contract) checkContractFits(contract, model, ext.inputShape, runFile(dir, 'backbone'));
    } catch (e) {
      disposeModel(model);
      throw e;
    }
    return model;
  }
  const best = runFile(dir, 'best');
  if (!existsSync(best))
    throw new DataError(`${dir}: no ${RUN_FILES.best} (stage 1 has not finished an epoch here)`);
  const ck = loadCheckpoint(best);
  // The seed only initialises weights that the checkpoint then replaces.
  const model = createModel(ck.meta.backbone, ck.meta.inputShape, ck.meta.numClasses, 0);
  loadModelArrays(model, ck.weights, best);
  return model;
}

/**
 * The preprocessing contract an external-backbone run's features were extracted with (its
 * backbone.json), checked: an unknown version or field is refused. Null for a run longtail
 * trained (its images are the data's own) and for runs written before the contract was recorded.
 */
export function stage1Contract(dir: string, ext = readExternalBackbone(dir)): PreprocessContract | null {
  if (!ext || ext.preprocessing === undefined) return null;
  return checkContract(ext.preprocessing, runFile(dir, 'backbone'));
}

/** The contract must describe the backbone it is stored with: a hand-edited record is refused. */
function checkContractFits(
  c: PreprocessContract,
  model: Model,
  inputShape: readonly [number, number, number],
  where: string,
): void {
  const b = model.backbone;
  const differs = (field: string, got: unknown, want: unknown) =>
    new DataError(
      `${where}: preprocessing ${field} is ${JSON.stringify(got)}, but the run's images and backbone have ${JSON.stringify(want)}`,
    );
  if (c.size !== inputShape[0]) throw differs('size', c.size, inputShape[0]);
  const colour = inputShape[2] === 1 ? 'grey' : 'rgb';
  if (c.colour !== colour) throw differs('colour', c.colour, colour);
  if (!isOnnxBackbone(b)) return;
  const p = b.preprocess;
  if (c.layout !== p.layout) throw differs('layout', c.layout, p.layout);
  for (const k of ['mean', 'std'] as const) {
    const v = c[k];
    const same = Array.from(p[k]).every((x, i) => Math.fround(v[i % v.length]!) === x);
    if (!same) throw differs(k, v, Array.from(p[k]));
  }
}

/**
 * How far stage 1 got in a run folder: epochs completed (checkpoint) of those configured, whether
 * it finished, and its stage1.json as read (validated once; null until stage 1 has finished).
 */
export function stage1Progress(
  dir: string,
  configuredEpochs: number,
): { done: number; finished: boolean; summary: Stage1SummaryFile | null } {
  const summary = readStage1Summary(dir);
  // An external backbone has no stage-1 training: its run is finished once features are saved.
  if (existsSync(runFile(dir, 'backbone'))) return { done: configuredEpochs, finished: true, summary };
  if (summary !== null) {
    const done = summary.history.length;
    return { done, finished: done >= configuredEpochs, summary };
  }
  const ck = runFile(dir, 'checkpoint');
  const done = existsSync(ck) ? loadCheckpoint(ck).meta.epoch : 0;
  return { done, finished: false, summary };
}
