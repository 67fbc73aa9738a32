/** Turns pipeline callbacks into progress bars and notes on stderr. */
import type { PipelineCallbacks } from '../pipeline/run.ts';
import { note } from './common.ts';
import { type Progress, progress } from './progress.ts';

export function cliCallbacks(): PipelineCallbacks & { done(): void } {
  let bar: Progress | null = null;
  let barKey = '';
  const barFor = (key: string, label: string) => {
    if (barKey !== key) {
      bar?.stop();
      bar = progress(label);
      barKey = key;
    }
    return bar!;
  };
  const finish = () => {
    bar?.stop();
    bar = null;
    barKey = '';
  };
  return {
    onPhase: (name) => {
      finish();
      note(`== ${name}`);
    },
    onStep: (s, epochs) =>
      barFor(`epoch${s.epoch}`, `epoch ${s.epoch + 1}/${epochs}`).update(s.step, s.steps, {
        loss: s.loss.toFixed(3),
        acc: (100 * s.acc).toFixed(1),
        'img/s': s.imagesPerSec.toFixed(0),
      }),
    onEpoch: (r, epochs) => {
      finish();
      note(
        `epoch ${r.epoch}/${epochs}  loss ${r.loss.toFixed(3)}  train ${(100 * r.trainAcc).toFixed(1)}%  ` +
          `val ${r.valAcc === null ? '-' : `${(100 * r.valAcc).toFixed(1)}%`}  ${r.imagesPerSec.toFixed(0)} img/s  ${r.seconds.toFixed(1)} s`,
      );
    },
    onFeatures: (split, done, total) => barFor(`feat-${split}`, split).update(done, total),
    onStage2Progress: (method, done, total) => barFor(`s2-${method}`, method).update(done, total),
    onMethod: (r) => {
      finish();
      note(
        `${r.label.padEnd(9)} All ${r.overall.toFixed(1)}  Many ${r.many?.toFixed(1) ?? '-'}  Medium ${r.medium?.toFixed(1) ?? '-'}  Few ${r.few?.toFixed(1) ?? '-'}` +
          (r.tau !== null ? `  (tau ${r.tau})` : '') +
          `  ${r.seconds.toFixed(1)} s`,
      );
    },
    warn: (m) => {
      finish();
      note(`warning: ${m}`);
    },
    done: finish,
  };
}
