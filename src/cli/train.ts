import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { stage2ConfigSchema, trainConfigSchema } from '../config/schema.ts';
import { ConfigError } from '../errors.ts';
import { saveFeatureFile } from '../features/feature-set.ts';
import { runFile } from '../io/run-folder.ts';
import { disposeModel } from '../models/model.ts';
import { accuracyOfFeatures } from '../pipeline/quick-eval.ts';
import { RESUME_MAY_CHANGE, resumeStage1, runStage1 } from '../pipeline/stage1.ts';
import { toPercent } from '../train/epoch.ts';
import { backendOption, note, printJson, startBackend } from './common.ts';
import {
  addConfigOption,
  addDataOptions,
  addOutOptions,
  addTrainOptions,
  configFromFlags,
  givenSettings,
} from './options.ts';
import { cliCallbacks } from './reporting.ts';

export function registerTrain(program: Command): void {
  const cmd = program
    .command('train')
    .description(
      'stage 1: train a backbone and linear classifier jointly (cross-entropy, SGD, cosine LR), keep the best ' +
        'validation epoch, checkpoint every epoch, and export features for stage 2 (features.npz)',
    );
  addDataOptions(cmd);
  addTrainOptions(cmd);
  addConfigOption(cmd);
  addOutOptions(cmd, 'run folder', 'runs/train-<time>');
  cmd
    .option(
      '--resume <run>',
      `continue an interrupted run in this folder with its saved settings; only ${RESUME_MAY_CHANGE.map((k) => `--${k}`).join(' (to extend it) and ')} may be given again with another value`,
    )
    .option('--export-features <path>', 'also write the features here: .npz, or a folder of .npy files')
    .option('--json', 'print one JSON document (stage-1 summary) instead of text')
    .addOption(backendOption())
    .action(async (opts: Record<string, unknown>) => {
      const resume = opts.resume as string | undefined;
      if (resume !== undefined && (opts.out !== undefined || opts.force))
        throw new ConfigError('--resume continues the run in its own folder: drop --out / --force');
      // Validate everything (flags, config file) before the backend starts or a file is written.
      const schema = trainConfigSchema();
      const cfg = resume === undefined ? configFromFlags(schema, opts) : null;
      const given = resume === undefined ? null : givenSettings(schema, opts);
      await startBackend(opts.backend as string | undefined);
      const cb = cliCallbacks();
      const s1 = await cb.during(() =>
        cfg !== null
          ? runStage1(cfg, opts.out as string | undefined, { ...cb, force: opts.force === true })
          : resumeStage1(resume!, given!, cb),
      );
      try {
        if (typeof opts.exportFeatures === 'string') saveFeatureFile(opts.exportFeatures, s1.features);
        const test = accuracyOfFeatures(s1.features);
        const summary = {
          runDir: s1.runDir,
          bestEpoch: s1.summary.bestEpoch,
          bestValAcc: s1.summary.bestValAcc,
          jointTestAcc: toPercent(test),
          seconds: s1.seconds,
          features: runFile(s1.runDir, 'features'),
        };
        if (opts.json) printJson(summary);
        else {
          // An ONNX-backbone run trains nothing: it has no epochs, so no best one.
          if (s1.summary.history.length > 0)
            note(
              `best epoch ${s1.summary.bestEpoch}${s1.summary.bestValAcc === null ? '' : ` (validation ${s1.summary.bestValAcc.toFixed(1)}%)`}`,
            );
          console.log(
            Number.isNaN(test)
              ? `features saved (no stage-1 classifier)   run: ${s1.runDir}`
              : `joint classifier test top-1: ${(100 * test).toFixed(2)}%   run: ${s1.runDir}`,
          );
          console.log(`next: ${nextCommand(s1.runDir, resume !== undefined)}`);
        }
      } finally {
        disposeModel(s1.model);
      }
    });
}

/**
 * What to run after stage 1: stage 2 with every method, or, for a resumed demo (killed in its
 * stage 1), stage 2 with the settings the demo was started with, which its config.json keeps.
 */
function nextCommand(dir: string, resumed: boolean): string {
  let saved: Record<string, unknown> = {};
  try {
    saved = JSON.parse(readFileSync(runFile(dir, 'config'), 'utf8')) as Record<string, unknown>;
  } catch {
    // no settings to carry over
  }
  if (!resumed || saved.command !== 'demo') return `longtail retrain --run ${dir} --method all`;
  const defaults = stage2ConfigSchema().parse({}) as Record<string, unknown>;
  const stage1 = trainConfigSchema().shape;
  const flags = [`--method ${String(saved.methods ?? 'all')}`];
  for (const [k, v] of Object.entries(saved)) {
    // Stage-2 keys and method settings (crtEpochs -> --crt-epochs); stage-1 keys stay with the run.
    if (k === 'command' || k === 'methods' || k === 'threads' || k in stage1) continue;
    if (v === undefined || typeof v === 'object' || JSON.stringify(v) === JSON.stringify(defaults[k]))
      continue;
    flags.push(`--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} ${String(v)}`);
  }
  return `this demo's stage 2 has not run; finish it with: longtail retrain --run ${dir} ${flags.join(' ')}`;
}
