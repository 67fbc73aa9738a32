/**
 * One fixed colour per split and per method, everywhere: every chart of a report, the live page and
 * the comparison page, and between runs. A method's colour follows from its name alone (the
 * built-in methods have their own; a method added with registerClassifier gets one from a second
 * list by a hash of its name), so the same method is the same colour in every report ever written.
 */

/** All / many / medium / few: dark grey for All, then head to tail from blue to red. */
export const SPLIT_COLOURS: Readonly<Record<'All' | 'many' | 'medium' | 'few', string>> = {
  All: '#4d4d4d',
  many: '#2166ac',
  medium: '#7fbc41',
  few: '#d6604d',
};

export const SPLIT_ORDER = ['All', 'many', 'medium', 'few'] as const;

/** The built-in methods (Tableau 10, in table order). */
const METHOD_COLOURS: Readonly<Record<string, string>> = {
  joint: '#4e79a7',
  ncm: '#f28e2b',
  crt: '#e15759',
  'tau-norm': '#76b7b2',
  lws: '#59a14f',
  'logit-adjust': '#edc948',
  'balanced-softmax': '#b07aa1',
  'weight-balancing': '#ff9da7',
  'prior-swap': '#9c755f',
};

/** For methods registered at run time: colours none of the built-ins uses. */
const EXTRA = ['#bab0ac', '#17becf', '#8c564b', '#bcbd22', '#7f7f7f', '#1f77b4', '#aec7e8', '#98df8a'];

/** The colour of a method, by its registry name. */
export function methodColour(name: string): string {
  const fixed = METHOD_COLOURS[name];
  if (fixed) return fixed;
  let h = 0;
  for (const ch of name) h = (h * 31 + ch.codePointAt(0)!) >>> 0;
  return EXTRA[h % EXTRA.length]!;
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
