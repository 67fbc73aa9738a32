/**
 * longtail's public API. Deep imports are private and may change.
 *
 * @example
 * import { initBackend, loadDataset, runPipeline, PipelineConfigSchema } from 'longtail';
 * await initBackend();
 * const results = await runPipeline(PipelineConfigSchema.parse({ epochs: 30 }), 'runs/mine');
 */
export {
  availableBackends,
  BACKENDS,
  type BackendInfo,
  type BackendName,
  initBackend,
} from './backend/backend.ts';
export { type NativeStatus, nativeStatus } from './backend/native-kernels.ts';
export {
  installWasmTrainingKernels,
  setTrainingKernels,
  type TrainingKernels,
  trainingKernels,
} from './backend/training-kernels.ts';
export { type BalancedSoftmaxOptions, balancedSoftmax } from './classifiers/balanced-softmax.ts';
export { crt } from './classifiers/crt.ts';
export { joint, linearClassifier } from './classifiers/joint.ts';
export { type LogitAdjustOptions, logitAdjust } from './classifiers/logit-adjust.ts';
export { lws } from './classifiers/lws.ts';
export { type NcmOptions, ncm } from './classifiers/ncm.ts';
export { type PriorSwapOptions, priorSwap, targetPrior } from './classifiers/prior-swap.ts';
export {
  type BuiltinMethodName,
  CLASSIFIERS,
  checkMethodName,
  createClassifier,
  hasMethod,
  type MethodName,
  methodEntries,
  methodEntry,
  methodNames,
  parseMethods,
  registerClassifier,
  unregisterClassifier,
} from './classifiers/registry.ts';
export { TAU_GRID, tauNorm, tauNormalize } from './classifiers/tau-norm.ts';
export { choose, columnSweep } from './classifiers/tuning.ts';
export {
  type ChartSpec,
  defineMethod,
  type FoldedLinear,
  type MethodEntry,
  type MethodReportInput,
  type Stage2Classifier,
  type Stage2Context,
  type SweepPoint,
  type TrainFeatureSource,
  type TunedParam,
  type TuningSpec,
} from './classifiers/types.ts';
export {
  classBalancedWeights,
  type WeightBalancingOptions,
  weightBalancing,
} from './classifiers/weight-balancing.ts';
export {
  type DataConfig,
  DataConfigSchema,
  LOSS_NAMES,
  type LossName,
  type PipelineConfig,
  PipelineConfigSchema,
  type RetrainConfig,
  RetrainConfigSchema,
  readRunConfig,
  type Stage2Config,
  Stage2ConfigSchema,
  type StudyConfig,
  StudyConfigSchema,
  type TrainConfig,
  TrainConfigSchema,
} from './config/schema.ts';
export { loadCifarLt, readCifarBinary } from './data/cifar.ts';
export { loadMnistLt } from './data/fashion-mnist.ts';
export { readIdx, readIdxImageSet } from './data/idx.ts';
export { loadImageList, loadListDataset, parseImageList } from './data/image-list.ts';
export { exponentialCounts, makeLongTailed, numpySubset, paretoCounts } from './data/long-tail.ts';
export { encodeNpy, readArrays, readNpy, readNpz, writeNpyDir, writeNpz } from './data/npy.ts';
export { DATASET_NAMES, DATASETS, type DatasetOptions, loadDataset } from './data/registry.ts';
export type { ImageSet, LongTailDataset } from './data/types.ts';
export { exportModel } from './deploy/export.ts';
export { type LoadedModel, loadModel, type Prediction } from './deploy/predict.ts';
export { ConfigError, DataError, UserError } from './errors.ts';
export {
  type Evaluation,
  evaluateLogits,
  evaluatePredictions,
  expectedCalibrationError,
} from './eval/metrics.ts';
export { DEFAULT_THRESHOLDS, type ShotThresholds, shotSplits, splitOf } from './eval/shot-splits.ts';
export { extractFeatures } from './features/extract.ts';
export { type FeatureSet, loadFeatureFile, saveFeatureFile } from './features/feature-set.ts';
export type { Backbone, BackboneSpec } from './models/backbone.ts';
export { forwardFeatures } from './models/forward.ts';
export { createModel, disposeModel, type Model } from './models/model.ts';
export { BACKBONE_NAMES, BACKBONES, createBackbone } from './models/registry.ts';
export type { PipelineCallbacks } from './pipeline/callbacks.ts';
export { featuresFromModel } from './pipeline/features.ts';
export { loadStage1Run, retrain, runPipeline, type Stage1Run } from './pipeline/run.ts';
export { resumeStage1, runStage1, type Stage1Output } from './pipeline/stage1.ts';
export { type MethodResult, runStage2 } from './pipeline/stage2.ts';
export { createRng, Rng } from './random/rng.ts';
export { type RunResults, RunResultsSchema } from './report/results.ts';
export { classProbabilities, progressiveProbabilities } from './sampling/probabilities.ts';
export { createSampler, SAMPLER_NAMES, SAMPLERS, type Sampler } from './sampling/samplers.ts';
export { DEFAULT_JOINT_CONFIG, type JointConfig, trainJoint } from './train/joint.ts';
export { logPrior, lossOffset } from './train/loss.ts';
