/**
 * The handshake between an ONNX backbone (main thread, synchronous) and its runtime worker
 * (onnxruntime-node, asynchronous): one Int32 control word per field, the images and the
 * features in SharedArrayBuffers, `Atomics.wait` on the state word. The worker's answer to
 * start-up (feature size, or an error) is in the control words and the `message` bytes; the main
 * thread then posts the output buffers, which the worker receives before its first request. Nothing
 * here needs the event loop of the waiting main thread.
 */
export const CTL = {
  /** IDLE, REQUEST (main wrote images), DONE (worker wrote features), FAILED, QUIT. */
  state: 0,
  /** Images in the request. */
  n: 1,
  /** 0 while starting, 1 ready, -1 failed (config error), -2 failed (data error). */
  ready: 2,
  featureDim: 3,
  /** Bytes of the UTF-8 error text in `message`. */
  messageLength: 5,
  /** Rank of the feature output (2, or 4 when it is pooled). */
  outputRank: 6,
  /** Images per session run the model supports (its fixed batch, 1 when its output has batch 1). */
  batch: 7,
  /** Set to 1 by the worker once its session is released (dispose and exit wait for it). */
  released: 4,
} as const;

export const STATE = { idle: 0, request: 1, done: 2, failed: 3, quit: 4 } as const;

export interface OnnxWorkerData {
  /** The model (possibly with the feature tensor added as an output). */
  bytes: Uint8Array;
  path: string;
  /** The model's folder when it has external data: onnxruntime resolves the files there, not in the working folder. */
  externalFolder: string | null;
  inputName: string;
  /** Input of one image, as the model takes it: [C, H, W] (nchw) or [H, W, C] (nhwc). */
  imageDims: number[];
  output: string;
  threads: number;
  maxBatch: number;
  /** The model's declared input batch when it is a fixed number, else null (dynamic). */
  fixedBatch: number | null;
  ctl: Int32Array;
  /** [maxBatch, ...imageDims] */
  images: Float32Array;
  /** An error's text (UTF-8), length in ctl[messageLength]. */
  message: Uint8Array;
  /** Module to import (onnxruntime-node; tests name a missing one to see the error). */
  runtime: string;
}

/** Posted by the main thread once the feature size is known. */
export interface OnnxOutputBuffers {
  features: Float32Array;
}

export function writeMessage(ctl: Int32Array, buf: Uint8Array, text: string): void {
  const b = new TextEncoder().encode(text).subarray(0, buf.length);
  buf.set(b);
  Atomics.store(ctl, CTL.messageLength, b.length);
}

export function readMessage(ctl: Int32Array, buf: Uint8Array): string {
  return new TextDecoder().decode(buf.slice(0, Atomics.load(ctl, CTL.messageLength)));
}
