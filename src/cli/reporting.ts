/** Turns pipeline callbacks into progress bars and notes on stderr, and handles Ctrl-C meanwhile. */
import type { PipelineCallbacks } from '../pipeline/callbacks.ts';
import { note } from './common.ts';
import { onInterrupt, stage1Saved } from './interrupt.ts';
import { type Progress, progress } from './progress.ts';

export interface CliCallbacks extends PipelineCallbacks {
  /** Stops the progress bar and the Ctrl-C handler. */
  done(): void;
  /** Runs the command's work and then `done()`, also when it throws (the error line is not drawn over a bar). */
  during<T>(work: () => Promise<T>): Promise<T>;
  /** The run folder, once opened. */
  runDir(): string | null;
}

export function cliCallbacks(): CliCallbacks {
  let dir: string | null = null;
  let epoch = 0;
  let epochs = 0;
  let stage2 = false;
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
  const stopInterrupt = onInterrupt(finish, () => stage1Saved(dir, epoch, epochs, stage2));
  const done = () => {
    finish();
    stopInterrupt();
  };
  return {
    onPhase: (name) => {
      finish();
      if (name.startsWith('stage 2')) stage2 = true;
      note(`== ${name}`);
    },
    onRunFolder: (d) => {
      dir = d;
      note(`run folder: ${d}`);
    },
    onStep: (s, total) => {
      epoch = Math.max(epoch, s.epoch); // epochs completed before this one (a resumed run starts later)
      epochs = total;
      barFor(`epoch${s.epoch}`, `epoch ${s.epoch + 1}/${total}`).update(s.step, s.steps, {
        loss: s.loss.toFixed(3),
        acc: s.acc.toFixed(1),
        'img/s': s.imagesPerSec.toFixed(0),
      });
    },
    onEpoch: (r, total) => {
      epoch = r.epoch;
      epochs = total;
      finish();
      note(
        `epoch ${r.epoch}/${total}  loss ${r.loss.toFixed(3)}  train ${r.trainAcc.toFixed(1)}%  ` +
          `val ${r.valAcc === null ? '-' : `${r.valAcc.toFixed(1)}%`}  ${r.imagesPerSec.toFixed(0)} img/s  ${r.seconds.toFixed(1)} s`,
      );
    },
    onFeatures: (split, done, total) => barFor(`feat-${split}`, split).update(done, total),
    onStage2Progress: (method, done, total) => barFor(`s2-${method}`, method).update(done, total),
    onMethod: (r) => {
      finish();
      note(
        `${r.label.padEnd(12)} All ${r.overall.toFixed(1)}  Many ${r.many?.toFixed(1) ?? '-'}  Medium ${r.medium?.toFixed(1) ?? '-'}  Few ${r.few?.toFixed(1) ?? '-'}` +
          (r.tuned ? `  (${r.tuned.param} ${r.tuned.value})` : '') +
          `  ${r.seconds.toFixed(1)} s`,
      );
    },
    warn: (m) => {
      finish();
      note(`warning: ${m}`);
    },
    done,
    during: async (work) => {
      try {
        return await work();
      } finally {
        done();
      }
    },
    runDir: () => dir,
  };
}
