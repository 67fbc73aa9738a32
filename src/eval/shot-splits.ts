/**
 * Many / medium / few-shot splits of the classes by their TRAINING image count (the paper's:
 * many > 100, medium 20..100 inclusive, few < 20). A split with no class is absent (null),
 * never scored as 0.
 */
import { ConfigError } from '../errors.ts';

export interface ShotThresholds {
  /** A class with more than this many training images is many-shot. Default 100. */
  many: number;
  /** A class with fewer than this many is few-shot. Default 20. */
  few: number;
}

export const DEFAULT_THRESHOLDS: ShotThresholds = { many: 100, few: 20 };

export type Split = 'many' | 'medium' | 'few';
export const SPLITS: readonly Split[] = ['many', 'medium', 'few'];

export function splitOf(count: number, t: ShotThresholds = DEFAULT_THRESHOLDS): Split {
  if (count > t.many) return 'many';
  if (count < t.few) return 'few';
  return 'medium';
}

/**
 * Refuses thresholds that contradict each other (a class both few- and many-shot): every command
 * calls this before it opens a run folder, not only when it first splits classes.
 */
export function checkShotThresholds(t: ShotThresholds): void {
  if (!(t.few <= t.many + 1))
    throw new ConfigError(
      `--few-threshold ${t.few} and --many-threshold ${t.many} contradict each other: few-shot is fewer than --few-threshold training images and many-shot more than --many-threshold, so --few-threshold must be at most --many-threshold + 1`,
    );
}

/** The classes of each split. */
export function shotSplits(
  trainCounts: readonly number[],
  t: ShotThresholds = DEFAULT_THRESHOLDS,
): Record<Split, number[]> {
  checkShotThresholds(t);
  const out: Record<Split, number[]> = { many: [], medium: [], few: [] };
  trainCounts.forEach((n, c) => {
    out[splitOf(n, t)].push(c);
  });
  return out;
}

/** Mean of the given classes' values; null when the split has no class (or none with a value). */
export function splitMean(values: readonly (number | null)[], classes: readonly number[]): number | null {
  const v = classes.map((c) => values[c]).filter((x): x is number => x !== null && x !== undefined);
  return v.length === 0 ? null : v.reduce((a, b) => a + b, 0) / v.length;
}
