/**
 * The run folder's layout: every file name a run writes, in one place. Nothing else in the code
 * spells these names; use `runFile(dir, 'best')`.
 */
import { join } from 'node:path';

export const RUN_FILES = {
  /** The resolved configuration of the command that made the run (validated on read). */
  config: 'config.json',
  /** Stage 1's last completed epoch: weights, momentum, history (resume from here). */
  checkpoint: 'checkpoint.npz',
  /** Stage 1's best validation epoch: the backbone stage 2 and deployment use. */
  best: 'best.npz',
  /** One JSON line per completed stage-1 epoch. */
  epochs: 'epochs.jsonl',
  /** Train / val / test features of the best backbone, and its classifier. */
  features: 'features.npz',
  /** Stage 1's summary once it has finished: history, best epoch, seconds. */
  stage1: 'stage1.json',
  /** Every stage-2 classifier folded into one linear layer (arrays) ... */
  classifiers: 'classifiers.npz',
  /** ... and their record: methods, class names, the backbone they were trained on. */
  classifiersRecord: 'classifiers.json',
  results: 'results.json',
  resultsMarkdown: 'results.md',
  report: 'report.html',
  /** Folder of charts: SVG, PNG and Vega-Lite spec per chart. */
  charts: 'charts',
  /** Where `retrain --run X` keeps its results and classifiers, inside X. */
  stage2: 'stage2',
  /** Held while a command writes the folder. */
  lock: '.longtail.lock',
} as const;

export type RunFile = keyof typeof RUN_FILES;

/** The path of one of a run folder's files. */
export function runFile(dir: string, file: RunFile): string {
  return join(dir, RUN_FILES[file]);
}
