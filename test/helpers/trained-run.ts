/**
 * One trained run shared by the tests that need a deployable model (test/deploy.test.ts,
 * test/adapt-prior.test.ts): Fashion-MNIST-LT, the demo's small CNN, the default methods (Joint,
 * NCM, cRT, tau-norm, LWS), BCTS calibration. Trained once per process: the first call starts it,
 * later calls get the same folder. The folder is removed when the process exits.
 *
 * Strong enough that EM and BBSE estimate a backward-50 prior from unlabeled images well inside
 * "no shift", and that predicting under the estimate beats the unadjusted head (the adapt-prior
 * test's claim; cRT about 68 % top-1): quick runs (60 or 150 images a class, 2-3 epochs) left
 * both estimators near "no shift" (TV 0.4-0.6). The validation split is 300 images a class (drawn
 * from the training file's unused images, so training is unchanged): with the default 20, BCTS's
 * per-class biases and BBSE's confusion counts come from 200 images, and on this run the estimates
 * were off by TV 0.14 (BBSE) and 0.21 (EM), which cost more than the shift gives (cRT's top-1 under
 * the estimate 65.6-66.9 % against 68.2 % unadjusted). With 300 a class: BBSE TV 0.05, EM 0.13.
 * It costs about 6 CPU seconds more (measured at load 30: 29.5 -> 35.6 s for the whole run).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '../../src/backend/backend.ts';
import { PipelineConfigSchema } from '../../src/config/schema.ts';
import { runPipeline } from '../../src/pipeline/run.ts';
import type { RunResults } from '../../src/report/results.ts';

/** The run's data settings: tests load the same data with loadMnistLt('fashion-mnist-lt', FIXTURE_DATA). */
export const FIXTURE_DATA = { maxPerClass: 200, imbalance: 10, valPerClass: 300 } as const;

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
