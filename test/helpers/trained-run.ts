/**
 * One trained run shared by the tests that need a deployable model (test/deploy.test.ts,
 * test/adapt-prior.test.ts): Fashion-MNIST-LT, the demo's small CNN, the default methods (Joint,
 * NCM, cRT, tau-norm, LWS), BCTS calibration. Trained once per process: the first call starts it,
 * later calls get the same folder. The folder is removed when the process exits.
 *
 * Strong enough that EM and BBSE estimate a backward-50 prior from unlabeled images well inside
 * "no shift" (the adapt-prior test's claim; cRT about 65 % top-1): the last session's quick runs
 * (60 or 150 images a class, 2-3 epochs) left both estimators near "no shift" (TV 0.4-0.6).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '../../src/backend/backend.ts';
import { PipelineConfigSchema } from '../../src/config/schema.ts';
import { runPipeline } from '../../src/pipeline/run.ts';
import type { RunResults } from '../../src/report/results.ts';

/** The run's data settings: tests load the same data with loadMnistLt('fashion-mnist-lt', FIXTURE_DATA). */
export const FIXTURE_DATA = { maxPerClass: 200, imbalance: 10 } as const;

let pending: Promise<{ dir: string; results: RunResults }> | null = null;

/** The shared run's folder and results (trained on the first call in this process). */
export function trainedRun(): Promise<{ dir: string; results: RunResults }> {
  pending ??= (async () => {
    const dir = mkdtempSync(join(tmpdir(), 'longtail-trained-run-'));
    process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
    await initBackend('wasm');
    const results = await runPipeline(
      PipelineConfigSchema.parse({
        ...FIXTURE_DATA,
        epochs: 10,
        batchSize: 32,
        crtEpochs: 2,
        lwsEpochs: 1,
      }),
      dir,
    );
    return { dir, results };
  })();
  return pending;
}
