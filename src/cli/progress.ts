/**
 * Progress on stderr: a live bar on a terminal, and a line every few seconds otherwise (CI
 * logs, pipes), so long work is never silent and stdout stays clean for --json.
 */
import cliProgress from 'cli-progress';

export interface Progress {
  update(done: number, total: number, fields?: Record<string, string>): void;
  stop(finalLine?: string): void;
}

export function progress(label: string, opts: { quiet?: boolean } = {}): Progress {
  if (opts.quiet) return { update: () => {}, stop: () => {} };
  if (process.stderr.isTTY) {
    const bar = new cliProgress.SingleBar(
      {
        stream: process.stderr,
        format: `${label.padEnd(14)} {bar} {value}/{total} {info} | {eta_formatted} left`,
        barsize: 24,
        hideCursor: true,
        etaBuffer: 20,
        fps: 5,
      },
      cliProgress.Presets.shades_classic,
    );
    let started = false;
    return {
      update(done, total, fields = {}) {
        const info = Object.entries(fields)
          .map(([k, v]) => `${k} ${v}`)
          .join('  ');
        if (!started) {
          bar.start(total, done, { info });
          started = true;
        } else {
          bar.setTotal(total);
          bar.update(done, { info });
        }
      },
      stop(finalLine) {
        if (started) bar.stop();
        if (finalLine) process.stderr.write(`${finalLine}\n`);
      },
    };
  }
  // Not a terminal: a line at most every 10 s, so logs stay short; quick work prints nothing.
  const t0 = Date.now();
  let last = t0;
  let printed = false;
  return {
    update(done, total, fields = {}) {
      const now = Date.now();
      if (now - last < 10_000 && !(done >= total && printed)) return;
      last = now;
      printed = true;
      const info = Object.entries(fields)
        .map(([k, v]) => `${k} ${v}`)
        .join('  ');
      const elapsed = (now - t0) / 1000;
      const eta = done > 0 ? (elapsed * (total - done)) / done : 0;
      process.stderr.write(
        `${label} ${done}/${total} ${info}${done < total ? ` (about ${eta.toFixed(0)} s left)` : ''}\n`,
      );
    },
    stop(finalLine) {
      if (finalLine) process.stderr.write(`${finalLine}\n`);
    },
  };
}
