/** Moved to training-kernels.ts; kept for deep imports from other folders until they move. */
export {
  installWasmTrainingKernels,
  setTrainingKernels,
  type TrainingKernels,
  trainingKernels,
} from './training-kernels.ts';
