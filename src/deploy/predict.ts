/**
 * Using a trained model: the frozen stage-1 backbone with one stage-2 classifier, folded into a
 * linear layer. `loadModel(runDir, { method })` -> `predict(images)` -> class probabilities.
 */
import { foldedLogits } from '../classifiers/linear-ops.ts';
import { decodeImage } from '../data/decode-images.ts';
import { ConfigError, DataError } from '../errors.ts';
import { csvField } from '../io/display.ts';
import { forwardFeatures } from '../models/forward.ts';
import { disposeModel, type Model } from '../models/model.ts';
import { loadStage1Model, stage1Contract } from '../train/stage1-model.ts';
import { type LoadedFolded, loadFolded } from './folded.ts';

export interface Prediction {
  /** Classes by probability (a fraction in [0, 1], not a percentage), highest first. */
  top: { index: number; name: string; probability: number }[];
}

/** A prediction for an image file: the path as given, and its classes. */
export interface FilePrediction extends Prediction {
  file: string;
}

export interface LoadedModel {
  method: string;
  classNames: string[];
  /** [height, width, channels] the model takes. */
  inputShape: readonly [number, number, number];
  model: Model;
  /** The folded layer, temperature included (W / T, b / T). */
  folded: LoadedFolded['layer'];
  /** The head's calibration (temperature, source prior, BBSE's validation counts). */
  calibration: LoadedFolded['calibration'];
  /** Training images per class, where the run recorded them. */
  trainCounts: number[] | undefined;
  /** One line for the user about the head (an older NCM head that still works), or null. */
  warning: string | null;
  /** images [n, H, W, C], pixels in [0, 1] -> per image the top-k classes. */
  predict(images: Float32Array, n: number, topK?: number): Prediction[];
  /**
   * Decodes image files (PNG, JPEG, ...; any size: resized, centre-cropped, converted to the
   * model's channels) and classifies them; one result per path, in order, carrying its path.
   */
  predictFiles(paths: string[], topK?: number): Promise<FilePrediction[]>;
  /** Logits [n, C] of image files, decoded as predictFiles does. */
  logitsOfFiles(paths: string[]): Promise<Float32Array>;
  /** Pixels [n, H, W, C] in [0, 1] of image files, decoded as predictFiles does (for `logits`). */
  decodeFiles(paths: string[]): Promise<Float32Array>;
  /** Logits of the folded layer, [n, C]. */
  logits(images: Float32Array, n: number): Float32Array;
  dispose(): void;
}

export function softmaxTop(
  logits: Float32Array,
  n: number,
  C: number,
  names: string[],
  k: number,
): Prediction[] {
  const out: Prediction[] = [];
  for (let i = 0; i < n; i++) {
    let m = -Infinity;
    for (let c = 0; c < C; c++) m = Math.max(m, logits[i * C + c]!);
    const e = Array.from({ length: C }, (_, c) => Math.exp(logits[i * C + c]! - m));
    const s = e.reduce((a, b) => a + b, 0);
    const ranked = e
      .map((v, c) => ({ index: c, name: names[c] ?? String(c), probability: v / s }))
      .sort((a, b) => b.probability - a.probability);
    out.push({ top: ranked.slice(0, Math.max(1, Math.min(k, C))) });
  }
  return out;
}

export function loadModel(
  runDir: string,
  { method = 'crt', backboneFile }: { method?: string; backboneFile?: string | undefined } = {},
): LoadedModel {
  const f = loadFolded(runDir, method, backboneFile);
  if (f.stage1Dir === null) {
    throw new ConfigError(
      `${runDir}: stage 2 ran on a feature file, so there is no backbone to predict with; use a run of \`longtail demo\` or \`longtail retrain --run\` (an ONNX backbone: \`longtail train --backbone onnx:FILE\` first)`,
    );
  }
  const model = loadStage1Model(f.stage1Dir, backboneFile);
  // Images are decoded and resized as the run's features were (its recorded contract, if any).
  const mode = stage1Contract(f.stage1Dir)?.resize.mode ?? 'shorter-centre-crop';
  const C = f.layer.bias.length;
  const d = model.backbone.featureDim;
  if (f.record.dim !== d)
    throw new DataError(`${runDir}: classifier is for ${f.record.dim}-d features, the backbone gives ${d}`);
  const [H, W, Ch] = model.inputShape;
  const logits = (images: Float32Array, n: number) => {
    const feats = forwardFeatures(model.backbone, images, n); // [n, d]
    return foldedLogits(f.layer, feats, n, d, C);
  };
  const decodeFiles = async (paths: string[]) => {
    const per = H * W * Ch;
    const x = new Float32Array(paths.length * per);
    for (const [i, p] of paths.entries()) {
      const px = await decodeImage(p, H, Ch === 1 ? 1 : 3, mode);
      for (let j = 0; j < per; j++) x[i * per + j] = px[j]! / 255;
    }
    return x;
  };
  const predict = (images: Float32Array, n: number, topK = 5) =>
    softmaxTop(logits(images, n), n, C, f.record.classNames, topK);
  return {
    method,
    classNames: f.record.classNames,
    inputShape: model.inputShape,
    model,
    folded: f.layer,
    calibration: f.calibration,
    trainCounts: f.record.trainCounts,
    warning: f.warning,
    logits,
    predict,
    async predictFiles(paths, topK = 5) {
      const x = await decodeFiles(paths);
      return predict(x, paths.length, topK).map((p, i) => ({ file: paths[i]!, ...p }));
    },
    async logitsOfFiles(paths) {
      return logits(await decodeFiles(paths), paths.length);
    },
    decodeFiles,
    dispose: () => disposeModel(model),
  };
}

/** The formats `predict --out FILE` writes, by the file's extension. */
export type PredictionFormat = 'csv' | 'json';

/** The format for an output path (.csv or .json, any case); null for anything else. */
export function predictionFormat(path: string): PredictionFormat | null {
  const m = /\.(csv|json)$/i.exec(path);
  return m ? (m[1]!.toLowerCase() as PredictionFormat) : null;
}

/**
 * Predictions as a file's text. CSV: one row per image, `file`, then `top1_name`,
 * `top1_probability`, ... `topK_...` (RFC 4180 quoting: file and class names are anyone's
 * text). JSON: { run, method, predictions: [{ file, top: [{ index, name, probability }] }] }.
 */
export function formatPredictions(
  format: PredictionFormat,
  predictions: readonly FilePrediction[],
  info: { run: string; method: string; topK: number },
): string {
  if (format === 'json')
    return `${JSON.stringify({ run: info.run, method: info.method, predictions }, null, 2)}\n`;
  const k = Math.max(info.topK, ...predictions.map((p) => p.top.length));
  const header = ['file'];
  for (let i = 1; i <= k; i++) header.push(`top${i}_name`, `top${i}_probability`);
  const lines = [header.join(',')];
  for (const p of predictions) {
    const cells = [csvField(p.file)];
    for (let i = 0; i < k; i++) {
      const t = p.top[i];
      cells.push(t ? csvField(t.name) : '', t ? String(t.probability) : '');
    }
    lines.push(cells.join(','));
  }
  return `${lines.join('\r\n')}\r\n`;
}
