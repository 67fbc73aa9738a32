/** What a pipeline tells its caller while it runs (the CLI turns these into progress bars), and where it ran. */
import os from 'node:os';
import { backendInfo } from '../backend/backend.ts';
import type { RunResults } from '../report/results.ts';
import type { EpochRecord, StepInfo } from '../train/joint.ts';
import type { MethodResult } from './stage2.ts';

export interface PipelineCallbacks {
  /** A phase starts ("loading data", "stage 1", ...). */
  onPhase?: (name: string) => void;
  /** The run folder is open (created and locked): from here on files are written. */
  onRunFolder?: (dir: string) => void;
  onStep?: (s: StepInfo, epochs: number) => void;
  onEpoch?: (r: EpochRecord, epochs: number) => void;
  onFeatures?: (split: string, done: number, total: number) => void;
  onStage2Progress?: (method: string, done: number, total: number) => void;
  onMethod?: (r: MethodResult) => void;
  warn?: (message: string) => void;
}

/** Where and on what the run computed, for results.json. */
export function environment(): RunResults['environment'] {
  const b = backendInfo();
  return {
    backend: b.name + (b.simd ? ' (SIMD)' : '') + (b.trainingKernels === 'native' ? ' + native kernels' : ''),
    tfjs: b.tfjsVersion,
    node: process.versions.node,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model?.trim() ?? 'unknown',
    platform: `${os.platform()} ${os.arch()}`,
  };
}
