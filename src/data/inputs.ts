/**
 * What `predict` classifies: image files, folders of images and list files, expanded to a list of
 * files plus the problems found on the way (reported, not thrown, so the good inputs still run).
 * A list file's paths must resolve (symlinks followed) inside the list's own folder, and only
 * regular files are passed on: a FIFO or a device among the inputs is a problem, never opened.
 */
import { readdirSync, statSync } from 'node:fs';
import { dirname, extname, join } from 'node:path';
import { DataError } from '../errors.ts';
import { errCode, notRegularMessage, resolveInside } from '../io/safe-path.ts';
import { readImageList } from './image-list.ts';

export const IMAGE_EXT = new Set([
  '.png',
  '.jpg',
  '.jpeg',
  '.webp',
  '.gif',
  '.tif',
  '.tiff',
  '.bmp',
  '.avif',
]);

/** Expands files, folders (their images, sorted) and list files (`path label` lines, paths relative to the list). */
export function expandInputs(inputs: string[]): { files: string[]; problems: string[] } {
  const files: string[] = [];
  const problems: string[] = [];
  /** Passes a regular file on, reports anything else. */
  const add = (path: string, where: string) => {
    try {
      const s = statSync(path);
      if (s.isFile()) files.push(path);
      else problems.push(notRegularMessage(path, s, where));
    } catch (e) {
      problems.push(`${where === path ? path : `${where}: ${path}`}: cannot use (${errCode(e)})`);
    }
  };
  for (const input of inputs) {
    let s: ReturnType<typeof statSync>;
    try {
      s = statSync(input);
    } catch {
      problems.push(`${input}: no such file or folder`);
      continue;
    }
    if (s.isDirectory()) {
      const imgs = readdirSync(input)
        .filter((f) => IMAGE_EXT.has(extname(f).toLowerCase()))
        .sort()
        .map((f) => join(input, f));
      if (imgs.length === 0)
        problems.push(`${input}: folder holds no images (expected ${[...IMAGE_EXT].join(', ')})`);
      for (const f of imgs) add(f, f);
    } else if (s.isFile() && extname(input).toLowerCase() === '.txt') {
      const base = dirname(input);
      for (const e of readImageList(input)) {
        const where = `${input}:${e.line}`;
        try {
          resolveInside(base, e.path, where);
          add(join(base, e.path), where);
        } catch (err) {
          if (!(err instanceof DataError)) throw err;
          problems.push(err.message);
        }
      }
    } else add(input, input);
  }
  return { files, problems };
}
