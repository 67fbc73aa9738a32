/**
 * `longtail export`: the backbone and one folded stage-2 classifier as a single TensorFlow.js
 * graph model (model.json + weights.bin) and labels.json, loadable with tf.loadGraphModel by
 * any tfjs program, in Node or a browser, with no longtail code. Input: images [n, H, W, C]
 * with pixels in [0, 1]; output `probabilities` [n, C] (the node `logits` holds the scores).
 */
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { ConfigError } from '../errors.ts';
import { alive, fsyncDir, makeFolder } from '../io/atomic.ts';
import { isOnnxBackbone } from '../models/onnx-backbone.ts';
import { GraphBuilder, isExportable } from './graph.ts';
import { encodeWithExternalData, onnxBackboneWithHead, resnetToOnnx } from './onnx-export.ts';
import { type LoadedModel, loadModel } from './predict.ts';
import { foldPrior, resolveTargetPrior } from './prior.ts';

export type ExportFormat = 'tfjs' | 'onnx';

/** The files an export writes (either format): an export folder holding only these may be replaced. */
const EXPORT_FILES = new Set(['model.json', 'weights.bin', 'labels.json', 'model.onnx', 'model.onnx.data']);

const json = (v: unknown) => Buffer.from(`${JSON.stringify(v, null, 2)}\n`, 'utf8');

/**
 * An export's sibling working folders: `.NAME.longtail-export-PID-N` (being written) and
 * `.NAME.longtail-old-PID-N` (the export it replaces, between the two renames).
 */
const WORK = /^\.(.+)\.longtail-(export|old)-(\d+)-(\d+)$/;
let counter = 0;

/**
 * Refuses an --out that holds anything but a previous export's files (replacing the folder would
 * delete them), before any work; also finishes what a killed export left (see recoverExport).
 */
export function checkExportTarget(outDir: string): void {
  recoverExport(outDir);
  if (!existsSync(outDir)) return;
  if (!statSync(outDir).isDirectory()) throw new ConfigError(`--out ${outDir}: is a file, expected a folder`);
  const other = readdirSync(outDir).filter((f) => !EXPORT_FILES.has(f));
  if (other.length > 0)
    throw new ConfigError(
      `--out ${outDir}: holds files an export does not write (${other.slice(0, 4).join(', ')}${other.length > 4 ? ', ...' : ''}); an export replaces its whole folder, so choose a folder of its own`,
    );
}

/**
 * A killed export leaves its sibling working folders: the half-written new one is removed, and
 * an old export moved aside just before the kill is put back when --out is missing (the kill fell
 * between the two renames), so the folder is always the old export or the new one, whole.
 */
function recoverExport(outDir: string): void {
  const out = resolve(outDir);
  const parent = dirname(out);
  let names: string[];
  try {
    names = readdirSync(parent);
  } catch {
    return;
  }
  const mine = names
    .map((n) => [n, WORK.exec(n)] as const)
    .filter(([, m]) => m !== null && m[1] === basename(out) && !alive(Number(m[3])));
  for (const [n, m] of mine)
    if (m![2] === 'old' && !existsSync(out)) renameSync(join(parent, n), out);
    else rmSync(join(parent, n), { recursive: true, force: true });
}

/**
 * Writes an export so that it appears whole or not at all: every file into a fresh sibling
 * folder (flushed to disk), then that folder renamed into place; an existing export is first
 * renamed aside and removed only after the new one is in place. A browser or a kill -9 never
 * sees new weights beside an old model.json.
 */
function writeExportFolder(outDir: string, files: Record<string, Uint8Array | Uint8Array[]>): void {
  const out = resolve(outDir);
  const parent = dirname(out);
  makeFolder(parent);
  const tag = `${process.pid}-${++counter}`;
  const tmp = join(parent, `.${basename(out)}.longtail-export-${tag}`);
  const old = join(parent, `.${basename(out)}.longtail-old-${tag}`);
  mkdirSync(tmp);
  try {
    for (const [name, content] of Object.entries(files)) {
      const fd = openSync(join(tmp, name), 'wx');
      try {
        // In chunks: external data can pass what one buffer holds.
        for (const bytes of Array.isArray(content) ? content : [content]) {
          let off = 0;
          while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
        }
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    }
    fsyncDir(tmp);
    checkExportTarget(outDir); // still only an export there (nothing was added meanwhile)
    const replacing = existsSync(out);
    if (replacing) renameSync(out, old);
    renameSync(tmp, out);
    fsyncDir(parent);
    if (replacing) rmSync(old, { recursive: true, force: true });
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    if (existsSync(old) && !existsSync(out)) renameSync(old, out);
    throw e;
  }
}

/** The model as one ONNX file (model.onnx) and labels.json. */
function exportOnnx(
  m: LoadedModel,
  runDir: string,
  method: string,
  outDir: string,
  prior: ExportPriorInfo,
  externalAbove?: number,
): ExportResult {
  let inputShape = m.inputShape as [number, number, number];
  const numClasses = m.folded.bias.length;
  const b = m.model.backbone;
  // A square ONNX model whose side is not the run's: the exported model takes images at the
  // model's side, resized once by the preprocessing contract when served (no Resize node, which
  // would be a second resize with another kernel).
  if (
    isOnnxBackbone(b) &&
    b.preprocess.size[0] === b.preprocess.size[1] &&
    b.preprocess.size[0] !== inputShape[0]
  )
    inputShape = [b.preprocess.size[0], b.preprocess.size[1], inputShape[2]];
  const head = {
    ...m.folded,
    classNames: m.classNames,
    method,
    meta: {
      temperature: String(prior.temperature),
      ...(prior.calibrationBias ? { calibration_bias: JSON.stringify(prior.calibrationBias) } : {}),
      target_prior: prior.targetPrior,
      ...(prior.prior ? { prior: JSON.stringify(prior.prior) } : {}),
    },
  };
  const files: Record<string, Uint8Array | Uint8Array[]> = {};
  if (isOnnxBackbone(b)) {
    const model = onnxBackboneWithHead(
      b.modelProto(),
      b.preprocess,
      b.output,
      b.outputRank,
      inputShape,
      b.featureDim,
      head,
      runDir,
    );
    // Past protobuf's 2 GiB (ViT-L/g class encoders), the weights go to model.onnx.data.
    const { model: bytes, data } = encodeWithExternalData(model, 'model.onnx.data', externalAbove);
    files['model.onnx'] = bytes;
    if (data) files['model.onnx.data'] = data;
  } else if (isExportable(b))
    files['model.onnx'] = resnetToOnnx(b.exportGraph, inputShape, b.featureDim, head, runDir);
  else
    throw new ConfigError(`${runDir}: backbone ${b.name} cannot be exported (it cannot describe its layers)`);
  files['labels.json'] = json(m.classNames);
  writeExportFolder(outDir, files);
  return { dir: outDir, files: Object.keys(files), inputShape, numClasses };
}

export interface ExportResult {
  dir: string;
  files: string[];
  inputShape: [number, number, number];
  numClasses: number;
  /** One line for the user about the head (an older NCM head that still works); absent if none. */
  warning?: string;
}

/** What the exported model's metadata records of its calibration and prior. */
export interface ExportPriorInfo {
  temperature: number;
  /** BCTS's per-class biases folded in after W / T, b / T; absent for temperature scaling. */
  calibrationBias?: number[];
  /** `uniform`, `train`, a file path, or `source` (none asked: the head's own, the validation prior). */
  targetPrior: string;
  prior: number[] | null;
}

export function exportModel(
  runDir: string,
  method: string,
  outDir: string,
  format: ExportFormat = 'tfjs',
  opts: {
    targetPrior?: string;
    normalizePrior?: boolean;
    backboneFile?: string | undefined;
    /** ONNX: initializers past this many bytes in all go to model.onnx.data (default 2 GiB; tests lower it). */
    externalDataAbove?: number;
  } = {},
): ExportResult {
  checkExportTarget(outDir);
  const loaded = loadModel(runDir, { method, backboneFile: opts.backboneFile });
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
      ...(loaded.calibration.bias ? { calibrationBias: loaded.calibration.bias } : {}),
      targetPrior: opts.targetPrior ?? 'source',
      prior: q,
    };
    if (format === 'onnx')
      return {
        ...exportOnnx(m, runDir, method, outDir, priorInfo, opts.externalDataAbove),
        ...(m.warning ? { warning: m.warning } : {}),
      };
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
    const dist = m.folded.distance;
    const logits = dist
      ? g.distance(f, m.folded.weight, dist.sqNorms, dist.scale, m.folded.bias, numClasses, d, 'logits')
      : g.dense(f, m.folded.weight, m.folded.bias, numClasses, d, 'logits');
    g.softmax(logits, 'probabilities');
    const { modelJson, weights } = g.build(
      { input: 'images', inputShape: [-1, H, W, C], output: 'probabilities', outputShape: [-1, numClasses] },
      {
        method,
        classNames: m.classNames,
        inputShape: [H, W, C],
        pixelRange: [0, 1],
        source: runDir,
        ...(dist ? { score: 'negative distance to class means' } : {}),
        ...priorInfo,
      },
    );
    writeExportFolder(outDir, {
      'weights.bin': weights,
      'model.json': json(modelJson),
      'labels.json': json(m.classNames),
    });
    return {
      dir: outDir,
      files: ['model.json', 'weights.bin', 'labels.json'],
      inputShape: [H, W, C],
      numClasses,
      ...(m.warning ? { warning: m.warning } : {}),
    };
  } finally {
    loaded.dispose();
  }
}
