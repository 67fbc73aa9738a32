/**
 * The ceiling on one array's bytes (an `.npy` entry, a decompressed IDX file): a declared or
 * decompressed size above it is refused before memory is spent on it. Default 2 GiB (the largest
 * file Node reads whole); raise it with the environment variable LONGTAIL_MAX_ARRAY_BYTES or a
 * reader's `maxArrayBytes` option.
 */
import { ConfigError } from '../errors.ts';

export const MAX_ARRAY_BYTES_ENV = 'LONGTAIL_MAX_ARRAY_BYTES';
export const DEFAULT_MAX_ARRAY_BYTES = 2 ** 31;

/** The ceiling in force: `override` if given, else the environment variable, else the default. */
export function maxArrayBytes(override?: number): number {
  if (override !== undefined) return override;
  const text = process.env[MAX_ARRAY_BYTES_ENV];
  if (text === undefined || text === '') return DEFAULT_MAX_ARRAY_BYTES;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new ConfigError(`${MAX_ARRAY_BYTES_ENV} must be a positive whole number of bytes, got '${text}'`);
  }
  return n;
}

/** How to raise the ceiling, appended to messages that hit it. */
export const RAISE_LIMIT_HINT = ` (set ${MAX_ARRAY_BYTES_ENV} to a larger number of bytes if the data is genuine)`;
