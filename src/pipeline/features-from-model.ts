/** From a stage-1 model and its data set to a FeatureSet (and an augmented training source). */
import type { TrainFeatureSource } from '../classifiers/types.ts';
import type { LongTailDataset } from '../data/types.ts';
import { ConfigError } from '../errors.ts';
import { extractFeatures } from '../features/extract.ts';
import type { FeatureSet } from '../features/feature-set.ts';
import { forwardFeatures } from '../models/forward.ts';
import type { Model } from '../models/model.ts';
import { isOnnxBackbone } from '../models/onnx-backbone.ts';
import { createRng } from '../random/rng.ts';
import { type Augmentation, makeBatch } from '../train/augment.ts';

export function featuresFromModel(
  model: Model,
  data: LongTailDataset,
  onProgress?: (split: string, done: number, total: number) => void,
): FeatureSet {
  const run = (split: 'train' | 'val' | 'test') => {
    const set = data[split];
    if (!set) return null;
    return {
      features: extractFeatures(model.backbone, set, { onProgress: (d, t) => onProgress?.(split, d, t) }),
      labels: set.labels,
    };
  };
  const bb = model.backbone;
  let classifier: FeatureSet['classifier'] = {
    weight: (model.head.weight.dataSync() as Float32Array).slice(),
    bias: (model.head.bias.dataSync() as Float32Array).slice(),
  };
  if (isOnnxBackbone(bb)) {
    // An ONNX backbone's classifier is the model's own final layer, when named; else none.
    classifier = null;
    if (bb.classifier) {
      if (bb.classifier.numClasses !== data.classNames.length)
        throw new ConfigError(
          `--onnx-fc-weight: ${bb.path}'s classifier has ${bb.classifier.numClasses} classes, the data set ${data.classNames.length}`,
        );
      classifier = { weight: bb.classifier.weight, bias: bb.classifier.bias };
    }
  }
  return {
    dim: model.backbone.featureDim,
    numClasses: data.classNames.length,
    classNames: data.classNames,
    trainCounts: data.trainCounts,
    train: run('train')!,
    val: run('val'),
    test: run('test')!,
    classifier,
  };
}

/**
 * The official stage-2 training input: training images with training augmentation through the
 * frozen backbone (evaluation mode, so batch norm uses its running statistics).
 */
export function augmentedSource(
  model: Model,
  data: LongTailDataset,
  aug: Augmentation,
  seed: number,
): TrainFeatureSource {
  const set = data.train;
  let rng = createRng(seed, 0x5a6e, 0);
  let lastEpoch = -1;
  return {
    mode: 'augmented',
    batch: (idx, epoch) => {
      if (epoch !== lastEpoch) {
        rng = createRng(seed, 0x5a6e, epoch);
        lastEpoch = epoch;
      }
      const x = makeBatch(set, idx, aug, rng); // [b, H, W, C]
      return forwardFeatures(model.backbone, x, idx.length, {
        batchSize: Math.max(1, idx.length),
        imageShape: [set.height, set.width, set.channels],
      }); // [b, d]
    },
  };
}
