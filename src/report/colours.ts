/**
 * Colours with no dependency (the live page's script is bundled from them: palette.ts, which reads
 * the method registry, must stay out of it).
 */

/** All / many / medium / few: dark grey for All, then head to tail from blue to red. */
export const SPLIT_COLOURS: Readonly<Record<'All' | 'many' | 'medium' | 'few', string>> = {
  All: '#4d4d4d',
  many: '#2166ac',
  medium: '#7fbc41',
  few: '#d6604d',
};

export const SPLIT_ORDER = ['All', 'many', 'medium', 'few'] as const;

/**
 * Marks drawn on top of a method's colour (the live reliability diagram's confidence marks):
 * near-black, with contrast 3 or more on every method colour (palette.test.ts).
 */
export const MARK_COLOUR = '#111111';
