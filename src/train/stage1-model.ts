/**
 * The one loader of a stage-1 run's model (its best validation epoch, `best.npz`), for stage 2,
 * predict and export alike, and the one test of whether stage 1 has finished.
 */
import { existsSync, readFileSync } from 'node:fs';
import { DataError } from '../errors.ts';
import { locateExternalBackbone, RUN_FILES, readExternalBackbone, runFile } from '../io/run-folder.ts';
import { createModel, loadModelArrays, type Model } from '../models/model.ts';
import { loadCheckpoint } from './checkpoint.ts';

/**
 * Loads the best stage-1 model of a run folder. The caller disposes it. An external backbone is
 * found (relative to the run, then where it was, or at `backboneFile`) and checked by hash.
 */
export function loadStage1Model(dir: string, backboneFile?: string): Model {
  const ext = readExternalBackbone(dir);
  if (ext) {
    const file = locateExternalBackbone(dir, ext, backboneFile);
    return createModel(
      { ...ext.spec, options: { ...ext.spec.options, path: file } },
      ext.inputShape,
      ext.numClasses,
      0,
    );
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

/** How far stage 1 got in a run folder: epochs completed (checkpoint) of those configured, and whether it finished. */
export function stage1Progress(dir: string, configuredEpochs: number): { done: number; finished: boolean } {
  // An external backbone has no stage-1 training: its run is finished once features are saved.
  if (existsSync(runFile(dir, 'backbone'))) return { done: configuredEpochs, finished: true };
  const summary = runFile(dir, 'stage1');
  if (existsSync(summary)) {
    try {
      const s = JSON.parse(readFileSync(summary, 'utf8')) as { history?: unknown[] };
      const done = Array.isArray(s.history) ? s.history.length : configuredEpochs;
      return { done, finished: done >= configuredEpochs };
    } catch {
      throw new DataError(`${summary}: not valid JSON (the run folder is damaged)`);
    }
  }
  const ck = runFile(dir, 'checkpoint');
  const done = existsSync(ck) ? loadCheckpoint(ck).meta.epoch : 0;
  return { done, finished: false };
}
