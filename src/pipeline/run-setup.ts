/**
 * What every command that writes a run does before and around its work: load the data with the
 * configuration's checks, make the thread count explicit, refuse a model the data cannot take,
 * and open the run folder only after all of that (released also on error).
 */
import os from 'node:os';
import type { DataConfig, TrainConfig } from '../config/schema.ts';
import { loadDataset } from '../data/registry.ts';
import type { LongTailDataset } from '../data/types.ts';
import { ConfigError } from '../errors.ts';
import { checkShotThresholds } from '../eval/shot-splits.ts';
import { writeJsonAtomic } from '../io/atomic.ts';
import { openRun, type RunFolder, type RunPlan } from '../io/run-folder.ts';
import { createModel, disposeModel } from '../models/model.ts';
import { backboneSpec } from '../models/registry.ts';
import { markParsed } from '../settings.ts';
import type { PipelineCallbacks } from './callbacks.ts';

/**
 * Opens a planned run folder (after the caller has validated every input), reports it, records
 * the configuration as `config.json`, runs `work` in it, and releases the folder's lock, also on
 * error. Every command that writes a run goes through here.
 */
export async function inRunFolder<T>(
  plan: RunPlan,
  config: Record<string, unknown>,
  opts: PipelineCallbacks,
  work: (folder: RunFolder) => Promise<T>,
): Promise<T> {
  const folder = openRun(plan);
  try {
    opts.onRunFolder?.(folder.dir);
    writeJsonAtomic(folder.path('config'), config);
    return await work(folder);
  } finally {
    folder.release();
  }
}

export async function loadRunData(cfg: DataConfig, cb: PipelineCallbacks = {}): Promise<LongTailDataset> {
  checkShotThresholds({ many: cfg.manyThreshold, few: cfg.fewThreshold });
  cb.onPhase?.(`loading ${cfg.dataset}`);
  // cfg may be a whole pipeline configuration: the data source takes its own settings.
  return loadDataset(cfg.dataset, cfg, {
    onProgress: (d, t) => cb.onFeatures?.('decoding images', d, t),
    ...(cb.warn ? { onWarning: cb.warn } : {}),
  });
}

/**
 * The thread count made explicit (all cores unless set), so the saved configuration says it; a
 * parsed configuration stays one (no other setting changes).
 */
export function withThreads<T extends TrainConfig>(cfg: T): T {
  return markParsed({ ...cfg, threads: cfg.threads ?? os.availableParallelism() });
}

/**
 * Refuses a configuration the data cannot take (a backbone too large for the images, ...) by
 * building the model once, before any folder is touched.
 */
export function checkModelFits(cfg: TrainConfig, data: LongTailDataset): void {
  const t = data.train;
  // The sampler would refuse it too, but only once the folder is open (and --force has cleared it).
  if (cfg.batchSize > t.labels.length)
    throw new ConfigError(
      `--batch-size ${cfg.batchSize} is larger than the ${t.labels.length} training images`,
    );
  disposeModel(
    createModel(backboneSpec(cfg), [t.height, t.width, t.channels], data.classNames.length, cfg.seed),
  );
}
