/**
 * Class names given by a user (folder names, list-file labels, a classes file): their order, and
 * the names that cannot stand side by side.
 *
 * Order is by Unicode code point, whatever the locale (Python's `sorted`, which torchvision's
 * ImageFolder and Keras' `image_dataset_from_directory` use): `B` < `a` < `é`, and a name above
 * U+FFFF sorts by its code point, not by its UTF-16 surrogates as JavaScript's default sort would.
 */
import { DataError } from '../errors.ts';
import { quoted } from '../io/display.ts';
import { readFileChecked } from '../io/read-file.ts';

/** Compares two strings by code point (locale-independent); a shorter prefix comes first. */
export function compareCodePoints(a: string, b: string): number {
  const ia = a[Symbol.iterator]();
  const ib = b[Symbol.iterator]();
  for (;;) {
    const x = ia.next();
    const y = ib.next();
    if (x.done || y.done) return x.done && y.done ? 0 : x.done ? -1 : 1;
    const d = x.value.codePointAt(0)! - y.value.codePointAt(0)!;
    if (d !== 0) return d;
  }
}

/** Names sorted by code point (a new array). */
export function sortByCodePoint(names: Iterable<string>): string[] {
  return [...names].sort(compareCodePoints);
}

/**
 * Refuses names that differ only in case (or in Unicode normalisation: `é` composed or not):
 * as folders they are one folder on a case-insensitive file system (macOS, Windows), and an
 * export or a copy of the data set would mix their images. `where` names the folder.
 */
export function refuseCaseCollisions(names: readonly string[], where: string): void {
  const seen = new Map<string, string>();
  for (const n of names) {
    const key = n.normalize('NFC').toLowerCase();
    const other = seen.get(key);
    if (other !== undefined) {
      throw new DataError(
        `${where}: class folders ${quoted(other)} and ${quoted(n)} differ only in case; they collide on ` +
          'case-insensitive file systems and in exports: rename or merge one',
      );
    }
    seen.set(key, n);
  }
}

/**
 * Reads a classes file: one class name a line, in label order (line 1 is class 0). Blank lines
 * are skipped; a repeated name is refused with both lines.
 */
export function readClassesFile(file: string): string[] {
  const text = readFileChecked(file, 'classes file').toString('utf8');
  const names: string[] = [];
  const lineOf = new Map<string, number>();
  text.split(/\r?\n/).forEach((raw, i) => {
    const name = raw.trim();
    if (name === '') return;
    const first = lineOf.get(name);
    if (first !== undefined) {
      throw new DataError(`${file}:${i + 1}: class ${quoted(name)} is already named on line ${first}`);
    }
    lineOf.set(name, i + 1);
    names.push(name);
  });
  if (names.length === 0) throw new DataError(`${file}: the classes file names no class (one name a line)`);
  return names;
}
