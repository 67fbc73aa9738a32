/**
 * A frozen feature extractor from an ONNX file (a backbone trained elsewhere, e.g. in PyTorch),
 * run by onnxruntime-node. It keeps the synchronous Backbone contract: the session runs in a
 * worker thread and `features()` waits for it with Atomics.wait on shared buffers (see
 * onnx-protocol.ts; the class-split heads in classifiers/sharded/ work the same way), so stage-2
 * augmented batches, extraction and predict go through it like through our own ResNets.
 *
 * Our images are [n, H, W, C] floats in [0, 1]; the model's input is described by the options:
 * size (bilinear resize, half-pixel centres), channels (grey repeated to 3), per-channel mean and
 * std, and layout (NCHW, PyTorch's, or NHWC). These run as tfjs ops here, and the ONNX export
 * appends the same as ONNX ops (deploy/onnx-export.ts).
 */
import { dirname, resolve } from 'node:path';
import type { Worker } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import { resizeU8To } from '../data/preprocess.ts';
import { ConfigError, DataError } from '../errors.ts';
import { readExternalTensor } from '../io/onnx-external.ts';
import { startWorker } from '../workers/spawn.ts';
import type { Backbone } from './backbone.ts';
import {
  type Dim,
  initializer,
  type ModelProto,
  onnx,
  PROTOBUF_LIMIT,
  readOnnxFile,
  valueNames,
} from './onnx-file.ts';
import { CTL, type OnnxOutputBuffers, type OnnxWorkerData, readMessage, STATE } from './onnx-protocol.ts';
import { ParamSet } from './params.ts';

const ENTRY = new URL('./onnx-worker.ts', import.meta.url);
/** Images per session run; a larger batch is split. */
const MAX_BATCH = 64;
const START_TIMEOUT_MS = 120_000;
const RUN_TIMEOUT_MS = 600_000;

export interface OnnxBackboneOptions {
  path: string;
  /** Side the model takes (default: the model's fixed size, else the images'). */
  inputSize?: number | undefined;
  /** Default: guessed from the input shape (a 1 or 3 in position 1 means NCHW), else NCHW. */
  layout?: 'nchw' | 'nhwc' | undefined;
  mean?: number[] | undefined;
  std?: number[] | undefined;
  /** The feature output (default the model's first output); 2-D, or 4-D average-pooled. */
  output?: string | undefined;
  /** Initializers of the final linear layer, [C, d] (PyTorch's) or [d, C], and [C]. */
  fcWeight?: string | undefined;
  fcBias?: string | undefined;
  /** onnxruntime's intra-op threads. */
  threads?: number | undefined;
  /** Module to load (tests); default onnxruntime-node. */
  runtime?: string | undefined;
}

/** How our images become the model's input; the export appends the same steps. */
export interface OnnxPreprocess {
  inputName: string;
  layout: 'nchw' | 'nhwc';
  /** [H, W] the model takes; equal to ours when no resize is needed. */
  size: [number, number];
  /** Channels the model takes; 3 from 1 means grey repeated. */
  channels: number;
  mean: Float32Array;
  std: Float32Array;
}

export interface OnnxBackbone extends Backbone {
  readonly path: string;
  readonly preprocess: OnnxPreprocess;
  readonly output: string;
  /** 2, or 4 when the output is average-pooled to [n, d]. */
  readonly outputRank: number;
  /** The ONNX model as loaded (with the feature output added when it was an inner tensor). */
  readonly modelBytes: Uint8Array;
  /**
   * The same model decoded, external data read into its initializers: not bound by protobuf's
   * 2 GiB (an export writes it back with external data when it is that large).
   */
  modelProto(): ModelProto;
  /** The stage-1 classifier from the model (fc initializers), or null. */
  readonly classifier: { weight: Float32Array; bias: Float32Array; numClasses: number } | null;
}

export function isOnnxBackbone(b: Backbone): b is OnnxBackbone {
  return 'modelBytes' in b && 'preprocess' in b;
}

function perChannel(v: number[] | undefined, c: number, fill: number, flag: string): Float32Array {
  if (v === undefined) return new Float32Array(c).fill(fill);
  if (v.length === 1) return new Float32Array(c).fill(v[0]!);
  if (v.length !== c)
    throw new ConfigError(`${flag} has ${v.length} values; the model takes ${c} channels (give 1 or ${c})`);
  return Float32Array.from(v);
}

function waitWhile(ctl: Int32Array, i: number, v: number, ms: number, what: string): number {
  const t0 = Date.now();
  for (;;) {
    const r = Atomics.wait(ctl, i, v, Math.max(1, ms - (Date.now() - t0)));
    const now = Atomics.load(ctl, i);
    if (now !== v) return now;
    if (r === 'timed-out')
      throw new DataError(`the ONNX runtime worker did not answer within ${ms / 1000} s (${what})`);
  }
}

/**
 * [n, H, W, C] in [0, 1] -> [n, side0, side1, C] by the preprocessing contract's kernel (the
 * images' uint8 values, u8 / 255 as the data stores them, stretched to the model's sides), so
 * that a model whose side is not the run's --image-size sees the contract's resize only, never
 * a second kernel. Decoding at the model's side (--image-size equal to it) resizes only once.
 */
function contractResize(x: tf.Tensor4D, side: readonly [number, number]): tf.Tensor4D {
  const [n, h, w, c] = x.shape;
  const v = x.dataSync();
  const per = h * w * c;
  const outPer = side[0] * side[1] * c;
  const out = new Float32Array(n * outPer);
  const u8 = new Uint8Array(per);
  for (let k = 0; k < n; k++) {
    for (let i = 0; i < per; i++) u8[i] = Math.min(255, Math.max(0, Math.round(v[k * per + i]! * 255)));
    const r = resizeU8To(u8, h, w, c, side[0], side[1]);
    for (let i = 0; i < outPer; i++) out[k * outPer + i] = r[i]! / 255;
  }
  return tf.tensor4d(out, [n, side[0], side[1], c]);
}

/** Creates an ONNX backbone for our images of `inputShape` [H, W, C]. */
export function createOnnxBackbone(
  o: OnnxBackboneOptions,
  inputShape: readonly [number, number, number],
): OnnxBackbone {
  const info = readOnnxFile(o.path);
  const [H, W, C] = inputShape;
  const d = info.input.dims;
  const guess: 'nchw' | 'nhwc' =
    d[1] !== null && d[1]! <= 4 ? 'nchw' : d[3] !== null && d[3]! <= 4 ? 'nhwc' : 'nchw';
  const layout = o.layout ?? guess;
  const [mh, mw, mc]: Dim[] = layout === 'nchw' ? [d[2]!, d[3]!, d[1]!] : [d[1]!, d[2]!, d[3]!];
  const shapeText = `[${d.map((x) => x ?? '?').join(', ')}]`;
  if (
    o.inputSize !== undefined &&
    ((mh !== null && mh !== o.inputSize) || (mw !== null && mw !== o.inputSize))
  )
    throw new ConfigError(
      `--onnx-input-size ${o.inputSize}: ${o.path} takes ${mh ?? '?'}x${mw ?? '?'} images (input ${info.input.name} ${shapeText}, ${layout})`,
    );
  const size: [number, number] = [mh ?? o.inputSize ?? H, mw ?? o.inputSize ?? W];
  const channels = mc ?? C;
  if (channels !== C && !(C === 1 && channels === 3))
    throw new ConfigError(
      `${o.path}: takes ${channels}-channel images (input ${info.input.name} ${shapeText}, read as ${layout}), the data has ${C}; check --onnx-layout`,
    );
  const pre: OnnxPreprocess = {
    inputName: info.input.name,
    layout,
    size,
    channels,
    mean: perChannel(o.mean, channels, 0, '--onnx-mean'),
    std: perChannel(o.std, channels, 1, '--onnx-std'),
  };
  if (pre.std.some((s) => !(s > 0))) throw new ConfigError('--onnx-std: every value must be positive');
  // The feature output: a graph output, or an inner tensor made one.
  const output = o.output ?? info.outputs[0]!;
  const names = valueNames(info.model);
  if (!names.has(output))
    throw new ConfigError(
      `--onnx-output ${output}: ${o.path} has no tensor of that name (its outputs: ${info.outputs.join(', ')})`,
    );
  let bytes = info.bytes;
  if (!info.outputs.includes(output)) {
    info.model.graph!.output!.push(onnx.ValueInfoProto.create({ name: output }));
    bytes = onnx.ModelProto.encode(info.model).finish();
  }
  let classifier: OnnxBackbone['classifier'] = null;
  if ((o.fcWeight === undefined) !== (o.fcBias === undefined))
    throw new ConfigError('--onnx-fc-weight and --onnx-fc-bias go together (the final linear layer)');
  const fc =
    o.fcWeight !== undefined
      ? {
          w: initializer(info, o.fcWeight, '--onnx-fc-weight'),
          b: initializer(info, o.fcBias!, '--onnx-fc-bias'),
        }
      : null;

  // The worker: started here, waited for synchronously.
  const imageDims = layout === 'nchw' ? [channels, size[0], size[1]] : [size[0], size[1], channels];
  const per = channels * size[0] * size[1];
  const fixedBatch = info.input.dims[0] ?? null;
  const bufferBatch = Math.max(MAX_BATCH, fixedBatch ?? 0);
  const ctl = new Int32Array(new SharedArrayBuffer(4 * 8));
  const images = new Float32Array(new SharedArrayBuffer(4 * bufferBatch * per));
  const message = new Uint8Array(new SharedArrayBuffer(4096));
  const data: OnnxWorkerData = {
    bytes,
    path: o.path,
    externalFolder: info.external.length > 0 ? dirname(resolve(o.path)) : null,
    inputName: info.input.name,
    imageDims,
    output,
    threads: o.threads ?? 1,
    maxBatch: MAX_BATCH,
    fixedBatch,
    ctl,
    images,
    message,
    runtime: o.runtime ?? process.env.LONGTAIL_ONNXRUNTIME ?? 'onnxruntime-node',
  };
  const worker: Worker = startWorker(ENTRY, data as unknown as Record<string, unknown>);
  worker.unref();
  /**
   * Asks the worker to quit and waits (bounded) until onnxruntime has released the session; only
   * then is the thread terminated. Terminating it mid-release, or letting Node tear it down at
   * exit with the session alive, aborted the process ("terminate called after throwing an
   * instance of 'Napi::Error'"). Also runs at exit for a backbone nobody disposed.
   */
  const release = (): void => {
    Atomics.store(ctl, CTL.state, STATE.quit);
    Atomics.notify(ctl, CTL.state);
    const t0 = Date.now();
    while (Atomics.load(ctl, CTL.released) === 0 && Date.now() - t0 < 10_000)
      Atomics.wait(ctl, CTL.released, 0, 100);
    void worker.terminate();
  };
  process.on('exit', release);
  const ready = waitWhile(ctl, CTL.ready, 0, START_TIMEOUT_MS, 'loading the model');
  if (ready < 0) {
    process.off('exit', release);
    void worker.terminate(); // it has released its session before answering
    const text = readMessage(ctl, message);
    throw ready === -1 ? new ConfigError(text) : new DataError(text);
  }
  const featureDim = Atomics.load(ctl, CTL.featureDim);
  // Images per run: the model's fixed batch (a short last chunk is padded with zeros), 1 when its
  // output has a fixed batch of 1, else up to MAX_BATCH.
  const batch = Atomics.load(ctl, CTL.batch);
  const out: OnnxOutputBuffers = {
    features: new Float32Array(new SharedArrayBuffer(4 * bufferBatch * featureDim)),
  };
  worker.postMessage(out);

  if (fc) {
    const [a, b] = fc.w.dims as [number, number];
    const Cn = fc.b.data.length;
    let weight: Float32Array;
    if (fc.w.dims.length === 2 && a === Cn && b === featureDim) weight = fc.w.data;
    else if (fc.w.dims.length === 2 && a === featureDim && b === Cn) {
      weight = new Float32Array(Cn * featureDim); // [d, C] -> [C, d]
      for (let i = 0; i < featureDim; i++)
        for (let c = 0; c < Cn; c++) weight[c * featureDim + i] = fc.w.data[i * Cn + c]!;
    } else {
      process.off('exit', release);
      release();
      throw new ConfigError(
        `--onnx-fc-weight ${o.fcWeight}: shape ${fc.w.dims.join('x')} is not [classes, features] = [${Cn}, ${featureDim}] (or its transpose)`,
      );
    }
    classifier = { weight, bias: fc.b.data, numClasses: Cn };
  }

  let closed = false;
  /** One session run on the first n images of `images`. */
  const runChunk = (n: number): void => {
    if (closed) throw new DataError(`${o.path}: the ONNX backbone was disposed`);
    Atomics.store(ctl, CTL.n, n);
    Atomics.store(ctl, CTL.state, STATE.request);
    Atomics.notify(ctl, CTL.state);
    const s = waitWhile(ctl, CTL.state, STATE.request, RUN_TIMEOUT_MS, 'running the model');
    Atomics.store(ctl, CTL.state, STATE.idle);
    if (s === STATE.failed) throw new DataError(readMessage(ctl, message));
  };
  /** [n, H, W, C] in [0, 1] -> the model's input [n, ...imageDims] as the options say. */
  const prepare = (x: tf.Tensor4D): tf.Tensor4D =>
    tf.tidy(() => {
      let y: tf.Tensor4D = x;
      if (size[0] !== x.shape[1] || size[1] !== x.shape[2]) y = contractResize(y, size);
      if (channels !== x.shape[3]) y = tf.tile(y, [1, 1, 1, channels]);
      y = tf.div(tf.sub(y, tf.tensor1d(pre.mean)), tf.tensor1d(pre.std));
      return layout === 'nchw' ? tf.transpose(y, [0, 3, 1, 2]) : y;
    });
  const runAll = (xs: Float32Array, n: number, k: number): Float32Array => {
    const result = new Float32Array(n * k);
    for (let s = 0; s < n; s += batch) {
      const m = Math.min(batch, n - s);
      images.set(xs.subarray(s * per, (s + m) * per));
      if (fixedBatch !== null) images.fill(0, m * per, fixedBatch * per);
      runChunk(fixedBatch ?? m);
      result.set(out.features.subarray(0, m * k), s * k);
    }
    return result;
  };
  const modelInput = (x: tf.Tensor4D): Float32Array => {
    const y = prepare(x);
    const v = y.dataSync() as Float32Array;
    y.dispose();
    return v;
  };
  return {
    name: `onnx:${o.path}`,
    featureDim,
    inputShape: [H, W, C],
    trainable: false,
    params: new ParamSet(),
    path: o.path,
    preprocess: pre,
    output,
    outputRank: Atomics.load(ctl, CTL.outputRank),
    /** With external data, the weights are read in (for export: one self-contained .onnx). */
    get modelBytes(): Uint8Array {
      if (info.external.length === 0) return bytes;
      const total = info.external.reduce((a, e) => a + e.length, bytes.length);
      if (total > PROTOBUF_LIMIT)
        throw new ConfigError(
          `${o.path}: its weights are external data (${total} bytes in all); one .onnx file holds at most 2 GiB`,
        );
      return onnx.ModelProto.encode(this.modelProto()).finish();
    },
    modelProto(): ModelProto {
      const m = onnx.ModelProto.decode(bytes);
      const byName = new Map(info.external.map((e) => [e.tensor, e]));
      for (const t of m.graph?.initializer ?? []) {
        const e = byName.get(t.name ?? '');
        if (!e) continue;
        t.rawData = readExternalTensor(e);
        t.externalData = [];
        t.dataLocation = onnx.TensorProto.DataLocation.DEFAULT;
      }
      return m;
    },
    classifier,
    features(x: tf.Tensor4D, _training: boolean): tf.Tensor2D {
      const n = x.shape[0];
      return tf.tensor2d(runAll(modelInput(x), n, featureDim), [n, featureDim]); // [n, d]
    },
    dispose() {
      if (closed) return;
      closed = true;
      process.off('exit', release);
      release();
    },
  };
}
