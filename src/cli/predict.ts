import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { type Command, Option } from 'commander';
import { methodNames } from '../classifiers/registry.ts';
import { expandInputs } from '../data/inputs.ts';
import { checkExportTarget, exportModel } from '../deploy/export.ts';
import {
  type FilePrediction,
  formatPredictions,
  type LoadedModel,
  loadModel,
  type PredictionFormat,
  predictionFormat,
} from '../deploy/predict.ts';
import {
  ADAPT_BATCH,
  type AdaptMethod,
  adaptedFromLogits,
  BBSE_NEEDS_COUNTS,
  formatAdaptedPredictions,
} from '../deploy/prior.ts';
import { ConfigError, DataError } from '../errors.ts';
import { writeFileAtomic } from '../io/atomic.ts';
import { printable } from '../io/display.ts';
import { planRun } from '../io/run-folder.ts';
import { backendOption, note, printJson, startBackend } from './common.ts';
import { num } from './options.ts';
import { progress } from './progress.ts';

/** --backbone-file: where a moved ONNX backbone is now (predict, export, retrain). */
export const BACKBONE_FILE_HELP =
  "an ONNX-backbone run's model at a new place (checked against the SHA-256 the run recorded); by default it is looked for relative to the run, then where it was";

export function registerPredictAndExport(program: Command): void {
  program
    .command('predict')
    .description(
      'classify images with a trained model: the stage-1 backbone and one stage-2 classifier of a run ' +
        '(INPUT: image files of any size, folders of images, or list files)',
    )
    .argument('<input...>', 'image files (PNG, JPEG, ...), folders of images, or .txt list files')
    .requiredOption(
      '--run <dir>',
      'a run folder with stage-2 classifiers: a `longtail demo` run, a stage-1 run after `longtail retrain --run` (its stage2/), or a retrain folder',
    )
    .option('-m, --method <name>', `a method of the run: ${methodNames().join(', ')}`, 'crt')
    .option('--top-k <k>', 'classes to show per image', num('--top-k', true, 1), 5)
    .addOption(
      new Option(
        '--adapt-prior <how>',
        "estimate the images' class prior (em: maximum likelihood on calibrated probabilities; bbse: from the run's validation confusion matrix), print it, and predict under it; needs at least as many images as classes",
      ).choices(['em', 'bbse']),
    )
    .option('--json', 'print one JSON document')
    .option(
      '-o, --out <file>',
      'also write the predictions to FILE: .csv (file, top-k names and probabilities) or .json; an existing file is refused without --force',
    )
    .option('-f, --force', 'replace an existing --out file')
    .option('--backbone-file <path>', BACKBONE_FILE_HELP)
    .addOption(backendOption())
    .action(
      async (
        inputs: string[],
        opts: {
          run: string;
          method: string;
          topK: number;
          json?: boolean;
          backend?: string;
          adaptPrior?: AdaptMethod;
          out?: string;
          force?: boolean;
          backboneFile?: string;
        },
      ) => {
        // Checked before any work: a wrong --out costs nothing and changes nothing.
        const format = opts.out === undefined ? null : predictionFormat(opts.out);
        if (opts.out !== undefined) {
          if (format === null)
            throw new ConfigError(`--out ${opts.out}: expected a file name ending in .csv or .json`);
          if (existsSync(opts.out) && opts.force !== true)
            throw new ConfigError(`--out ${opts.out}: the file exists; --force replaces it`);
          if (!existsSync(dirname(resolve(opts.out))))
            throw new ConfigError(`--out ${opts.out}: no such folder ${dirname(resolve(opts.out))}`);
        }
        await startBackend(opts.backend);
        const model = loadModel(opts.run, { method: opts.method, backboneFile: opts.backboneFile });
        if (model.warning) note(`warning: ${model.warning}`);
        const { files, problems } = expandInputs(inputs);
        // Refused before any image is read: without validation counts BBSE has nothing to solve.
        if (opts.adaptPrior === 'bbse' && model.calibration.valConfusion === null) {
          model.dispose();
          throw new ConfigError(BBSE_NEEDS_COUNTS);
        }
        if (opts.adaptPrior) {
          try {
            await adaptedAction(model, files, problems, {
              ...opts,
              adaptPrior: opts.adaptPrior,
              ...(format !== null ? { format } : {}),
            });
          } finally {
            model.dispose();
          }
          return;
        }
        const results: FilePrediction[] = [];
        const bar = files.length > 20 ? progress('predicting') : null;
        try {
          for (const [i, f] of files.entries()) {
            try {
              const [p] = await model.predictFiles([f], opts.topK);
              results.push(p!);
            } catch (e) {
              problems.push(`${f}: not a readable image (${(e as Error).message.split('\n')[0]})`);
            }
            bar?.update(i + 1, files.length);
          }
        } finally {
          bar?.stop();
          model.dispose();
        }
        if (opts.out !== undefined && format !== null && results.length > 0)
          writeFileAtomic(
            opts.out,
            formatPredictions(format, results, { run: opts.run, method: opts.method, topK: opts.topK }),
          );
        if (opts.out !== undefined && results.length > 0 && !opts.json)
          note(`predictions written to ${opts.out}`);
        if (opts.json)
          printJson({ run: opts.run, method: opts.method, predictions: results, errors: problems });
        else {
          for (const r of results) {
            // File and class names are anyone's text: shown, never interpreted by the terminal.
            console.log(
              printable(
                `${r.file}: ${r.top.map((t) => `${t.name} ${(100 * t.probability).toFixed(1)}%`).join(', ')}`,
              ),
            );
          }
          for (const p of problems) note(`error: ${p}`);
        }
        if (problems.length > 0) {
          if (results.length === 0)
            throw new DataError(`no image could be classified:\n  ${problems.join('\n  ')}`);
          process.exitCode = 2;
        }
      },
    );

  program
    .command('export')
    .description(
      'write the backbone with a folded stage-2 classifier as one TensorFlow.js graph model (model.json + ' +
        'weights.bin) and labels.json, loadable with tf.loadGraphModel by any tfjs program (docs/deploy.md)',
    )
    .requiredOption('--run <dir>', 'a run folder of `longtail demo` or `longtail retrain --run`')
    .option('-m, --method <name>', `a method of the run: ${methodNames().join(', ')}`, 'crt')
    .requiredOption(
      '-o, --out <dir>',
      'folder for model.json, weights.bin, labels.json; an existing non-empty folder is refused without --force',
    )
    .option(
      '-f, --force',
      'write into a non-empty --out folder (replacing model.json, weights.bin, labels.json)',
    )
    .addOption(
      new Option(
        '--format <format>',
        'tfjs: a TensorFlow.js graph model (model.json + weights.bin); onnx: one model.onnx (input images [n, H, W, C] in [0, 1], outputs probabilities, logits, features), for ONNX-backbone runs too',
      )
        .choices(['tfjs', 'onnx'])
        .default('tfjs'),
    )
    .option(
      '--target-prior <prior>',
      'fold a class prior into the exported head: uniform, train (the training frequencies), or a JSON file (an array of numbers in label order, or an object from class name to number) (default: the validation prior the head is calibrated to)',
    )
    .option(
      '--normalize-prior',
      'rescale a --target-prior file that does not sum to 1 instead of refusing it',
    )
    .option('--json', 'print one JSON document')
    .option('--backbone-file <path>', BACKBONE_FILE_HELP)
    .addOption(backendOption())
    .action(
      async (opts: {
        backboneFile?: string;
        targetPrior?: string;
        normalizePrior?: boolean;
        run: string;
        method: string;
        out: string;
        force?: boolean;
        json?: boolean;
        backend?: string;
        format: 'tfjs' | 'onnx';
      }) => {
        // --force replaces a previous export (only: checkExportTarget refuses other files).
        if (opts.force === true) checkExportTarget(opts.out);
        else planRun('export', opts.out);
        await startBackend(opts.backend);
        const r = exportModel(opts.run, opts.method, opts.out, opts.format, {
          ...(opts.targetPrior ? { targetPrior: opts.targetPrior } : {}),
          normalizePrior: opts.normalizePrior === true,
          backboneFile: opts.backboneFile,
        });
        if (r.warning) note(`warning: ${r.warning}`);
        if (opts.json) printJson(r);
        else
          console.log(
            `wrote ${r.files.map((f) => join(r.dir, f)).join(', ')}: input images [n, ${r.inputShape.join(', ')}] in [0, 1], output probabilities [n, ${r.numClasses}]`,
          );
      },
    );
}

/**
 * `predict --adapt-prior`: every image decoded once, its logits kept (the prior is the whole
 * set's), then all classified under the estimated prior; `--out` as plain predict.
 */
async function adaptedAction(
  model: LoadedModel,
  files: string[],
  problems: string[],
  opts: {
    run: string;
    method: string;
    topK: number;
    json?: boolean;
    adaptPrior: AdaptMethod;
    out?: string;
    format?: PredictionFormat;
  },
): Promise<void> {
  const C = model.classNames.length;
  const readable: string[] = [];
  const rows: Float32Array[] = [];
  // Each file decoded alone (an unreadable one is skipped with a note), then classified
  // ADAPT_BATCH at a time: one forward pass per image costs several times more.
  const [H, W, Ch] = model.inputShape;
  const per = H * W * Ch;
  let pending: Float32Array[] = [];
  const flush = () => {
    if (pending.length === 0) return;
    const x = new Float32Array(pending.length * per);
    pending.forEach((p, i) => {
      x.set(p, i * per);
    });
    rows.push(model.logits(x, pending.length));
    pending = [];
  };
  const bar = files.length > 20 ? progress('reading images') : null;
  try {
    for (const [i, f] of files.entries()) {
      try {
        pending.push(await model.decodeFiles([f]));
        readable.push(f);
      } catch (e) {
        problems.push(`${f}: not a readable image (${(e as Error).message.split('\n')[0]})`);
      }
      if (pending.length === ADAPT_BATCH) flush();
      bar?.update(i + 1, files.length);
    }
    flush();
  } finally {
    bar?.stop();
  }
  const logits = new Float32Array(readable.length * C);
  let at = 0;
  for (const z of rows) {
    logits.set(z, at);
    at += z.length;
  }
  if (readable.length < C)
    throw new ConfigError(
      `--adapt-prior needs at least as many images as classes: ${readable.length} readable images for ${C} classes`,
    );
  const r = adaptedFromLogits(model, readable, logits, opts.adaptPrior, opts.topK);
  if (opts.out !== undefined && opts.format !== undefined) {
    writeFileAtomic(
      opts.out,
      formatAdaptedPredictions(opts.format, r, { ...opts, adaptPrior: opts.adaptPrior }),
    );
    if (!opts.json) note(`predictions written to ${opts.out}`);
  }
  if (opts.json)
    printJson({
      run: opts.run,
      method: opts.method,
      adaptPrior: opts.adaptPrior,
      temperature: model.calibration.temperature,
      prior: r.prior,
      predictions: r.predictions,
      errors: problems,
    });
  else {
    console.log(
      printable(
        `estimated prior (${opts.adaptPrior}, ${readable.length} images): ${r.prior.map((p) => `${p.name} ${(100 * p.probability).toFixed(1)}%`).join(', ')}`,
      ),
    );
    for (const p of r.predictions)
      console.log(
        printable(
          `${p.file}: ${p.top.map((t) => `${t.name} ${(100 * t.probability).toFixed(1)}%`).join(', ')}${p.unadjusted === p.top[0]!.name ? '' : ` (unadjusted: ${p.unadjusted})`}`,
        ),
      );
    for (const p of problems) note(`error: ${p}`);
  }
  if (problems.length > 0) process.exitCode = 2;
}
