/**
 * The ceiling on one array's bytes (an `.npy` array, an `.npz` entry, a decompressed IDX file): a
 * declared or decompressed size above it is refused before memory is spent on it. Default: the
 * machine's total memory (an array larger than that cannot be held anyway); set it with the
 * environment variable LONGTAIL_MAX_ARRAY_BYTES or a reader's `maxArrayBytes` option.
 *
 * The ceiling is the last guard, not the first: a `.npy` file or stored `.npz` entry must hold its
 * bytes in the file, and a deflated entry must declare what its `.npy` header needs and no more
 * than DEFLATE can expand its compressed bytes to (src/io/zip.ts), so a small crafted archive
 * cannot claim gigabytes whatever the ceiling.
 */
import { totalmem } from 'node:os';
import { ConfigError } from '../errors.ts';

export const MAX_ARRAY_BYTES_ENV = 'LONGTAIL_MAX_ARRAY_BYTES';

/** The default ceiling: the machine's memory. */
export function defaultMaxArrayBytes(): number {
  return totalmem();
}

/**
 * Elements one typed array holds in Node 20 (V8 11): 2^32 (`new Uint8Array(2 ** 32 + 1)` throws
 * "Invalid typed array length"); an ArrayBuffer or SharedArrayBuffer itself may be larger.
 */
export const MAX_TYPED_ARRAY_LENGTH = 2 ** 32;

/** Bytes read from a file, or inflated, per step when reading arrays (tests pass tiny values). */
export const DEFAULT_CHUNK_BYTES = 64 * 1024 * 1024;

/** The ceiling in force: `override` if given, else the environment variable, else the default. */
export function maxArrayBytes(override?: number): number {
  if (override !== undefined) return override;
  const text = process.env[MAX_ARRAY_BYTES_ENV];
  if (text === undefined || text === '') return defaultMaxArrayBytes();
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new ConfigError(`${MAX_ARRAY_BYTES_ENV} must be a positive whole number of bytes, got '${text}'`);
  }
  return n;
}

/** How to raise the ceiling, appended to messages that hit it. */
export const RAISE_LIMIT_HINT = ` (set ${MAX_ARRAY_BYTES_ENV} to a larger number of bytes if the data is genuine)`;
