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
  const [lossT, flat] = tf.tidy(() => {
    const x = tf.tensor4d(batch, [B, H, W, C]);
    const y = tf.tensor1d(labels, 'int32');
    const { value, grads } = tf.variableGrads(() => {
      const logits = model.head.apply(model.backbone.features(x, batchStats)); // [B, classes]
      correctT = tf.keep(tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), y), 'float32')));
      const oh = tf.oneHot(y, model.numClasses) as tf.Tensor2D;
      return crossEntropy(logits, oh, logitOffset ? tf.tensor1d(logitOffset) : undefined);
    }, vars);
    return [value, tf.concat(vars.map((v) => tf.reshape(grads[v.name]!, [-1])))];
  });
  const loss = lossT.dataSync()[0]!;
  const grads = out === undefined ? (flat.dataSync() as Float32Array) : readInto(flat, out);
  const ct = correctT as tf.Tensor | null;
  const correct = ct?.dataSync()[0] ?? 0;
  tf.dispose([lossT, flat]);
  ct?.dispose();
  return { loss, correct, grads };
}

/**
 * A float32 tensor's values copied into `out` (which it must fit), without the fresh array
 * dataSync makes: on wasm straight from the heap. Data-parallel steps use it so that no large
 * array is allocated per step (each one counts towards V8's full collections).
 */
function readInto(t: tf.Tensor, out: Float32Array): Float32Array {
  if (out.length < t.size) throw new Error(`gradient buffer of ${out.length} for ${t.size} values`);
  const backend = tf.backend() as { typedArrayFromHeap?: (t: tf.TensorInfo) => Float32Array };
  out.set(backend.typedArrayFromHeap ? backend.typedArrayFromHeap(t) : (t.dataSync() as Float32Array));
  return out.subarray(0, t.size);
}

/** The parameters training updates, in a fixed order (the same in every replica). */
export function trainableVars(model: Model): tf.Variable[] {
  return [...model.backbone.params.trainable(), ...model.head.params.trainable()];
}

/** One optimiser update from flat gradients (as computeGrads gives them). */
export function applyGrads(model: Model, opt: Sgd, flat: Float32Array, lr: number): void {
  const vars = trainableVars(model);
  tf.tidy(() => {
    const grads: tf.NamedTensorMap = {};
    let o = 0;
    for (const v of vars) {
      grads[v.name] = tf.tensor(flat.subarray(o, o + v.size), v.shape);
      o += v.size;
    }
    opt.step(vars, grads, lr);
  });
}

/** One SGD step on a batch on this thread: gradients, then the update. */
export function makeTrainStep(model: Model, opt: Sgd, logitOffset?: Float32Array | null) {
  return (batch: Float32Array, labels: Int32Array, lr: number): { loss: number; correct: number } => {
    const { loss, correct, grads } = computeGrads(model, batch, labels, { logitOffset });
    if (Number.isFinite(loss)) applyGrads(model, opt, grads, lr);
    return { loss, correct };
  };
}
