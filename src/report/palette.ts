/**
 * One fixed colour per split and per method, everywhere: every chart of a report, the live page and
 * the comparison page, and between runs. A method's colour follows from its name alone (its
 * registry entry's `colour`; a method registered without one gets a spare colour by a hash of its
 * name), so the same method is the same colour in every report ever written.
 */
import { hasMethod, methodEntry } from '../classifiers/registry.ts';
import { SPLIT_COLOURS, SPLIT_ORDER } from './colours.ts';

export { MARK_COLOUR, SPLIT_COLOURS, SPLIT_ORDER } from './colours.ts';

/**
 * For methods without a colour of their own (registered at run time): colours apart from the
 * built-in ones (CIEDE2000 18 or more from every other colour here and in the registry).
 */
export const SPARE_METHOD_COLOURS = [
  '#ff8888',
  '#11bbee',
  '#007766',
  '#22bb55',
  '#99aaee',
  '#887733',
  '#aa6688',
  '#dd5533',
] as const;

/** The colour of a method, by its registry name: its entry's own, else a spare one by a hash of the name. */
export function methodColour(name: string): string {
  const own = hasMethod(name) ? methodEntry(name).colour : undefined;
  if (own) return own;
  let h = 0;
  for (const ch of name) h = (h * 31 + ch.codePointAt(0)!) >>> 0;
  return SPARE_METHOD_COLOURS[h % SPARE_METHOD_COLOURS.length]!;
}

/** A Vega-Lite colour scale that pins each method label to its method's colour. */
export function methodColourScale(methods: { method: string; label: string }[]): {
  domain: string[];
  range: string[];
} {
  return { domain: methods.map((m) => m.label), range: methods.map((m) => methodColour(m.method)) };
}

/** A Vega-Lite colour scale for the splits present (All, many, medium, few, in that order). */
export function splitColourScale(splits: readonly string[] = SPLIT_ORDER): {
  domain: string[];
  range: string[];
} {
  const present = SPLIT_ORDER.filter((s) => splits.includes(s));
  return { domain: [...present], range: present.map((s) => SPLIT_COLOURS[s]) };
}
