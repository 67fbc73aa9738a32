/** The training step shared by the trainer and its data-parallel workers. */
import * as tf from '@tensorflow/tfjs-core';
import type { Model } from '../models/model.ts';
import type { Sgd } from '../optim/sgd.ts';
import { crossEntropy } from './loss.ts';

/**
 * Loss and gradients of every trainable parameter on a batch (forward in training mode unless
 * `batchStats` is false, which uses the running batch-norm statistics). Tensors live only inside
 * tidy; the gradients come back as one flat array in `trainableVars` order, read outside tidy
 * (reading inside tidy is slow on wasm).
 */
export function computeGrads(
  model: Model,
  batch: Float32Array,
  labels: Int32Array,
  {
    batchStats = true,
    out,
    logitOffset,
  }: { batchStats?: boolean; out?: Float32Array; logitOffset?: Float32Array | null } = {},
): { loss: number; correct: number; grads: Float32Array } {
  const vars = trainableVars(model);
  const [H, W, C] = model.inputShape;
  const B = labels.length;
  let correctT: tf.Tensor | null = null;
  const [lossT, gs] = tf.tidy(() => {
    const x = tf.tensor4d(batch, [B, H, W, C]);
    const y = tf.tensor1d(labels, 'int32');
    // Made outside the gradient's forward pass: what the tape records, it also clones and walks.
    const oh = tf.oneHot(y, model.numClasses) as tf.Tensor2D;
    const offset = logitOffset ? tf.tensor1d(logitOffset) : undefined;
    let logits: tf.Tensor2D | null = null;
    const { value, grads } = tf.variableGrads(() => {
      logits = tf.keep(model.head.apply(model.backbone.features(x, batchStats))); // [B, classes]
      return crossEntropy(logits, oh, offset);
    }, vars);
    const z = logits as unknown as tf.Tensor2D;
    correctT = tf.keep(tf.sum(tf.cast(tf.equal(tf.argMax(z, 1), y), 'float32')));
    z.dispose();
    return [value, vars.map((v) => grads[v.name]!)] as [tf.Scalar, tf.Tensor[]];
  });
  const loss = lossT.dataSync()[0]!;
  // Each gradient straight from its tensor into one flat array (no concatenated copy first).
  const total = vars.reduce((n, v) => n + v.size, 0);
  if (out !== undefined && out.length < total)
    throw new Error(`gradient buffer of ${out.length} for ${total} values`);
  const grads = out === undefined ? new Float32Array(total) : out.subarray(0, total);
  let o = 0;
  for (const g of gs) {
    grads.set(hostView(g), o);
    o += g.size;
  }
  const ct = correctT as tf.Tensor | null;
  const correct = ct?.dataSync()[0] ?? 0;
  tf.dispose([lossT, ...gs]);
  ct?.dispose();
  return { loss, correct, grads };
}

/**
 * A float32 tensor's values without the fresh array dataSync makes: on wasm a view of the heap
 * (valid until the next allocation). Data-parallel steps read their gradients through it so that
 * no large array is allocated per step (each one counts towards V8's full collections).
 */
function hostView(t: tf.Tensor): Float32Array {
  const backend = tf.backend() as { typedArrayFromHeap?: (t: tf.TensorInfo) => Float32Array };
  return backend.typedArrayFromHeap ? backend.typedArrayFromHeap(t) : (t.dataSync() as Float32Array);
}

/** The parameters training updates, in a fixed order (the same in every replica). */
export function trainableVars(model: Model): tf.Variable[] {
  return [...model.backbone.params.trainable(), ...model.head.params.trainable()];
}

/** One optimiser update from flat gradients (as computeGrads gives them). */
export function applyGrads(model: Model, opt: Sgd, flat: Float32Array, lr: number): void {
  opt.stepFlat(trainableVars(model), flat, lr);
}

/** One SGD step on a batch on this thread: gradients, then the update. */
export function makeTrainStep(model: Model, opt: Sgd, logitOffset?: Float32Array | null) {
  return (batch: Float32Array, labels: Int32Array, lr: number): { loss: number; correct: number } => {
    const { loss, correct, grads } = computeGrads(model, batch, labels, { logitOffset });
    if (Number.isFinite(loss)) applyGrads(model, opt, grads, lr);
    return { loss, correct };
  };
}
