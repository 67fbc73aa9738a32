/**
 * Ctrl-C during a long command: stop the progress bar (which shows the cursor again), end the
 * line, say what was saved and how to continue, and exit with 130 (the shell's code for SIGINT).
 * Locks are released by the run folder's exit hook.
 */
import { note } from './common.ts';

export function onInterrupt(stopProgress: () => void, whatWasSaved: () => string): () => void {
  const handler = () => {
    stopProgress();
    process.stderr.write('\n');
    note(`interrupted: ${whatWasSaved()}`);
    process.exit(130);
  };
  process.once('SIGINT', handler);
  return () => process.off('SIGINT', handler);
}

/** What an interrupted stage 1 left, as a user reads it. */
export function stage1Saved(
  dir: string | null,
  epoch: number,
  epochs: number,
  stage2Started: boolean,
): string {
  if (dir === null) return 'nothing was written';
  if (stage2Started)
    return `stage 1 is complete in ${dir}; run stage 2 again with: longtail retrain --run ${dir}`;
  if (epoch === 0) return `no epoch was completed, so ${dir} holds nothing to resume`;
  return `epoch ${epoch} of ${epochs} is saved in ${dir}; continue with: longtail train --resume ${dir}`;
}
