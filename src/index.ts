/**
 * longtail's public API: what a user needs (docs/architecture.md says what belongs). Deep imports
 * are private and may change. Every type a function here takes or returns is exported too, so
 * that it can be named and is in the reference (docs/api/; `npm run docs` warns about any that
 * is not).
 *
 * @packageDocumentation
 * @example
 * import { initBackend, runPipeline, PipelineConfigSchema } from 'longtail';
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
export {
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
  createClassifier,
  hasMethod,
  type MethodName,
  methodEntries,
  methodEntry,
  methodNames,
  registerClassifier,
  unregisterClassifier,
} from './classifiers/registry.ts';
export type { TauNormOptions } from './classifiers/tau-norm.ts';
export { TAU_GRID, tauNorm, tauNormalize } from './classifiers/tau-norm.ts';
export type { HeadTrainingOptions } from './classifiers/train-head.ts';
export { type ColumnMap, choose, columnSweep, type TauTuningOptions } from './classifiers/tuning.ts';
export {
  type ChartSpec,
  defineMethod,
  type FeatureTransform,
  type FoldedLinear,
  type HeadSettings,
  type MethodEntry,
  type MethodReportInput,
  type SplitAccuracy,
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
export type { RunConfig } from './config/schema.ts';
// Each `*Schema` is the command's schema with the built-in registries; the builder beside it
// (`trainConfigSchema()`, ...) composes it again, with whatever was registered since.
export {
  type DataConfig,
  DataConfigSchema,
  dataConfigSchema,
  LOSS_NAMES,
  type LossName,
  type PipelineConfig,
  PipelineConfigSchema,
  pipelineConfigSchema,
  type RetrainConfig,
  RetrainConfigSchema,
  readRunConfig,
  retrainConfigSchema,
  type Stage2Config,
  Stage2ConfigSchema,
  type StudyConfig,
  StudyConfigSchema,
  studyConfigSchema,
  type TrainConfig,
  TrainConfigSchema,
  trainConfigSchema,
} from './config/schema.ts';
export type { CifarLtOptions } from './data/cifar.ts';
export { loadCifarLt, readCifarBinary } from './data/cifar.ts';
export type { DecodeImagesOptions } from './data/decode-images.ts';
export type { MnistLtOptions } from './data/fashion-mnist.ts';
export { loadMnistLt } from './data/fashion-mnist.ts';
export { readIdxImageSet } from './data/idx.ts';
export type { ClassOrder, ListDatasetOptions, LoadListOptions } from './data/image-list.ts';
export { loadImageList, loadListDataset } from './data/image-list.ts';
export type { MakeLongTailedOptions } from './data/long-tail.ts';
export { exponentialCounts, makeLongTailed, paretoCounts } from './data/long-tail.ts';
export {
  checkContract,
  decodeAndResize,
  makeContract,
  type PreprocessContract,
  type ResizeMode,
  resizeU8,
} from './data/preprocess.ts';
export {
  DATASET_NAMES,
  DATASETS,
  type DataHooks,
  type DatasetEntry,
  datasetNames,
  defineDataset,
  loadDataset,
  registerDataset,
  unregisterDataset,
} from './data/registry.ts';
export type { HeldOutValidation, ImageSet, LongTailDataset, LongTailProfile } from './data/types.ts';
export type { ExportFormat, ExportResult } from './deploy/export.ts';
export { exportModel } from './deploy/export.ts';
export type { FoldedCalibration } from './deploy/folded.ts';
export { type FilePrediction, type LoadedModel, loadModel, type Prediction } from './deploy/predict.ts';
export {
  type AdaptedFiles,
  type AdaptedPrior,
  type AdaptMethod,
  adaptedFromLogits,
  adaptPrior,
  foldPrior,
  predictFilesAdapted,
  readPriorFile,
  resolveTargetPrior,
} from './deploy/prior.ts';
export { ConfigError, DataError, UserError } from './errors.ts';
export {
  arrayBlocks,
  type BctsFit,
  type CalibrationStats,
  type ClassBias,
  calibrationStats,
  type DeployCalibration,
  fitBcts,
  fitTemperature,
  type LogitBlocks,
  nllAt,
  type SparseConfusion,
  type TemperatureFit,
} from './eval/calibration.ts';
export {
  adjustedPredictions,
  bbsePrior,
  emPrior,
  labelPrior,
  type PriorEstimate,
  softmaxRows,
  tvDistance,
} from './eval/label-shift.ts';
export {
  CONFUSION_MAX_CLASSES,
  type Evaluation,
  evaluateLogitBlocks,
  evaluateLogits,
  evaluatePredictions,
  expectedCalibrationError,
  LogitRows,
} from './eval/metrics.ts';
export type { Split } from './eval/shot-splits.ts';
export { DEFAULT_THRESHOLDS, type ShotThresholds, shotSplits, splitOf } from './eval/shot-splits.ts';
export { extractFeatures } from './features/extract.ts';
export type { FeatureSplit, LinearWeights, LoadFeatureFileOptions } from './features/feature-set.ts';
export { type FeatureSet, featureRows, loadFeatureFile, saveFeatureFile } from './features/feature-set.ts';
export type {
  ArrayHeader,
  ArrayInFile,
  ArraysToWrite,
  NpyArray,
  NpyDtype,
  NpyRowReader,
  ReadArraysOptions,
  ReadNpyOptions,
  WriteArraysOptions,
} from './io/npy.ts';
export { readArrays, readNpy, readNpz, writeNpyDir, writeNpz } from './io/npy.ts';
export type { Backbone, BackboneSpec } from './models/backbone.ts';
export type { ForwardOptions, ImageSource } from './models/forward.ts';
export { forwardFeatures } from './models/forward.ts';
export type { LinearHead } from './models/linear.ts';
export { createModel, disposeModel, type Model } from './models/model.ts';
export type { NamedArrays, ParamSet } from './models/params.ts';
export {
  BACKBONE_NAMES,
  BACKBONES,
  type BackboneEntry,
  backboneNames,
  createBackbone,
  defineBackbone,
  registerBackbone,
  unregisterBackbone,
} from './models/registry.ts';
export { type NativeStatus, nativeStatus } from './native-addon.ts';
export type { PipelineCallbacks } from './pipeline/callbacks.ts';
export { featuresFromModel } from './pipeline/features-from-model.ts';
export {
  reportRuns,
  type WriteComparisonOptions,
  type WrittenComparison,
  writeComparison,
} from './pipeline/report-runs.ts';
export { loadStage1Run, retrain, runPipeline, type Stage1Run } from './pipeline/run.ts';
export { runSeeds } from './pipeline/run-seeds.ts';
export { resumeStage1, runStage1, type Stage1Output } from './pipeline/stage1.ts';
export type {
  CalibrateMode,
  CalibrationResult,
  ShiftedResult,
  Stage2Options,
  Stage2Output,
} from './pipeline/stage2.ts';
export { type MethodResult, runStage2 } from './pipeline/stage2.ts';
export {
  type Finding,
  runSamplerStudy,
  STUDY_SAMPLERS,
  type StudyCell,
  type StudyResult,
} from './pipeline/study.ts';
export { createRng, Rng } from './random/rng.ts';
export {
  type Comparison,
  type ComparisonGroup,
  ComparisonSchema,
  compareRuns,
  type LoadedRun,
  summariseRuns,
} from './report/group-runs.ts';
export { type RunResults, RunResultsSchema } from './report/results.ts';
export type { MeanStd, SeedSummary } from './report/seed-summary.ts';
export { classProbabilities, logPrior, progressiveProbabilities } from './sampling/probabilities.ts';
export type { SamplerContext, SamplerEntry, SamplerOptions } from './sampling/samplers.ts';
export { createSampler, SAMPLER_NAMES, SAMPLERS, type Sampler } from './sampling/samplers.ts';
export type { Augmentation } from './train/augment.ts';
export type { EpochRecord, StepInfo } from './train/epoch.ts';
export type { TrainOptions, TrainResult } from './train/joint.ts';
export {
  DEFAULT_JOINT_CONFIG,
  type JointConfig,
  JointConfigSchema,
  jointConfigSchema,
  trainJoint,
} from './train/joint.ts';
