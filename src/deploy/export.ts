/**
 * `longtail export`: the backbone and one folded stage-2 classifier as a single TensorFlow.js
 * graph model (model.json + weights.bin) and labels.json, loadable with tf.loadGraphModel by
 * any tfjs program, in Node or a browser, with no longtail code. Input: images [n, H, W, C]
 * with pixels in [0, 1]; output `probabilities` [n, C] (the node `logits` holds the scores).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../errors.ts';
import { writeFileAtomic, writeJsonAtomic } from '../io/atomic.ts';
import { isOnnxBackbone } from '../models/onnx-backbone.ts';
import { GraphBuilder, isExportable } from './graph.ts';
import { onnxBackboneWithHead, resnetToOnnx } from './onnx-export.ts';
import { type LoadedModel, loadModel } from './predict.ts';
import { foldPrior, resolveTargetPrior } from './prior.ts';

export type ExportFormat = 'tfjs' | 'onnx';

/** The model as one ONNX file (model.onnx) and labels.json. */
function exportOnnx(
  m: LoadedModel,
  runDir: string,
  method: string,
  outDir: string,
  prior: ExportPriorInfo,
): ExportResult {
  const inputShape = m.inputShape as [number, number, number];
  const numClasses = m.folded.bias.length;
  const b = m.model.backbone;
  const head = {
    ...m.folded,
    classNames: m.classNames,
    method,
    meta: {
      temperature: String(prior.temperature),
      target_prior: prior.targetPrior,
      ...(prior.prior ? { prior: JSON.stringify(prior.prior) } : {}),
    },
  };
  let bytes: Uint8Array;
  if (isOnnxBackbone(b))
    bytes = onnxBackboneWithHead(
      b.modelBytes,
      b.preprocess,
      b.output,
      b.outputRank,
      inputShape,
      b.featureDim,
      head,
      runDir,
    );
  else if (isExportable(b)) bytes = resnetToOnnx(b.exportGraph, inputShape, b.featureDim, head, runDir);
  else
    throw new ConfigError(`${runDir}: backbone ${b.name} cannot be exported (it cannot describe its layers)`);
  mkdirSync(outDir, { recursive: true });
  writeFileAtomic(join(outDir, 'model.onnx'), bytes);
  writeJsonAtomic(join(outDir, 'labels.json'), m.classNames);
  return { dir: outDir, files: ['model.onnx', 'labels.json'], inputShape, numClasses };
}

export interface ExportResult {
  dir: string;
  files: string[];
  inputShape: [number, number, number];
  numClasses: number;
}

/** What the exported model's metadata records of its calibration and prior. */
export interface ExportPriorInfo {
  temperature: number;
  /** `uniform`, `train`, a file path, or `source` (none asked: the head's own, the validation prior). */
  targetPrior: string;
  prior: number[] | null;
}

export function exportModel(
  runDir: string,
  method: string,
  outDir: string,
  format: ExportFormat = 'tfjs',
  opts: { targetPrior?: string; normalizePrior?: boolean } = {},
): ExportResult {
  const loaded = loadModel(runDir, { method });
  try {
    // The target prior is resolved (and a bad file refused) before anything is written.
    const q = opts.targetPrior
      ? resolveTargetPrior(opts.targetPrior, loaded.classNames, loaded.trainCounts, {
          normalize: opts.normalizePrior === true,
        })
      : null;
    const m: LoadedModel = q
      ? { ...loaded, folded: foldPrior(loaded.folded, q, loaded.calibration.sourcePrior) }
      : loaded;
    const priorInfo: ExportPriorInfo = {
      temperature: loaded.calibration.temperature,
      targetPrior: opts.targetPrior ?? 'source',
      prior: q,
    };
    if (format === 'onnx') return exportOnnx(m, runDir, method, outDir, priorInfo);
    const [H, W, C] = m.inputShape;
    const numClasses = m.folded.bias.length;
    const backbone = m.model.backbone;
    if (!isExportable(backbone)) {
      throw new ConfigError(
        `${runDir}: backbone ${backbone.name} cannot be exported as a TensorFlow.js graph (it cannot describe its layers)${isOnnxBackbone(backbone) ? '; use --format onnx' : ''}`,
      );
    }
    const d = backbone.featureDim;
    const g = new GraphBuilder();
    const x = g.placeholder('images', [-1, H, W, C]);
    let f = backbone.exportGraph(g, x);
    const t = m.folded.transform;
    if (t.kind === 'cl2n') f = g.l2normalize(g.subConst(f, t.mean));
    else if (t.kind === 'l2n') f = g.l2normalize(f);
    const logits = g.dense(f, m.folded.weight, m.folded.bias, numClasses, d, 'logits');
    g.softmax(logits, 'probabilities');
    const { modelJson, weights } = g.build(
      { input: 'images', inputShape: [-1, H, W, C], output: 'probabilities', outputShape: [-1, numClasses] },
      {
        method,
        classNames: m.classNames,
        inputShape: [H, W, C],
        pixelRange: [0, 1],
        source: runDir,
        ...priorInfo,
      },
    );
    mkdirSync(outDir, { recursive: true });
    writeFileAtomic(join(outDir, 'weights.bin'), weights);
    writeJsonAtomic(join(outDir, 'model.json'), modelJson);
    writeJsonAtomic(join(outDir, 'labels.json'), m.classNames);
    return {
      dir: outDir,
      files: ['model.json', 'weights.bin', 'labels.json'],
      inputShape: [H, W, C],
      numClasses,
    };
  } finally {
    loaded.dispose();
  }
}
