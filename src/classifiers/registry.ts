/**
 * The one registry of stage-2 methods. Each entry (types.ts: MethodEntry) carries the method whole:
 * label, table order, whether it needs the stage-1 classifier, its options (a zod schema with
 * defaults), its tuning on validation and its report charts. The CLI, configuration, results
 * schema, report, study, predict and export derive from it; `registerClassifier` adds a method at
 * run time (library API), which then appears everywhere the built-in ones do.
 */
import type { z } from 'zod';
import { ConfigError } from '../errors.ts';
import { checkName, ruleOf } from '../registry.ts';
import { balancedSoftmaxMethod } from './balanced-softmax.ts';
import { crtMethod } from './crt.ts';
import { jointMethod } from './joint.ts';
import { logitAdjustMethod } from './logit-adjust.ts';
import { lwsMethod } from './lws.ts';
import { ncmMethod } from './ncm.ts';
import { priorSwapMethod } from './prior-swap.ts';
import { tauNormMethod } from './tau-norm.ts';
import type { MethodEntry, Stage2Classifier, Stage2Context } from './types.ts';
import { weightBalancingMethod } from './weight-balancing.ts';

/**
 * The built-in methods, by name, each with its chart colour: chosen so that every pair differs by
 * a CIEDE2000 distance of 25 or more, and every colour is light enough for a black mark on it
 * (report/palette.test.ts checks both).
 */
export const CLASSIFIERS = {
  joint: { ...jointMethod, colour: '#4e79a7' },
  ncm: { ...ncmMethod, colour: '#ee9922' },
  crt: { ...crtMethod, colour: '#cc0044' },
  'tau-norm': { ...tauNormMethod, colour: '#00bbaa' },
  lws: { ...lwsMethod, colour: '#007700' },
  'logit-adjust': { ...logitAdjustMethod, colour: '#99aa00' },
  'balanced-softmax': { ...balancedSoftmaxMethod, colour: '#9933aa' },
  'weight-balancing': { ...weightBalancingMethod, colour: '#ee88ee' },
  'prior-swap': { ...priorSwapMethod, colour: '#995511' },
} as const;

export type BuiltinMethodName = keyof typeof CLASSIFIERS;
/** A method's name: a built-in one, or one added with registerClassifier. */
export type MethodName = BuiltinMethodName | (string & {});

// Every entry, built-in and registered, by name.
const ENTRIES: Record<string, MethodEntry> = { ...CLASSIFIERS };

/** Every method's entry, in table order. */
export function methodEntries(): MethodEntry[] {
  return Object.values(ENTRIES).sort((a, b) => a.order - b.order || a.name.localeCompare(b.name));
}

/** Every method's name, in table order. */
export function methodNames(): string[] {
  return methodEntries().map((e) => e.name);
}

export function hasMethod(name: string): boolean {
  return Object.hasOwn(ENTRIES, name);
}

export function checkMethodName(name: string): MethodName {
  return checkName(ENTRIES, 'method', name, methodNames(), ' (or all)');
}

export function methodEntry(name: string): MethodEntry {
  return ENTRIES[checkMethodName(name)]!;
}

/** Parses `crt,lws` or `all`, into table order. */
export function parseMethods(spec: string): MethodName[] {
  if (spec === 'all') return methodNames();
  const names = spec.split(',').map((s) => checkMethodName(s.trim()));
  return methodNames().filter((m) => names.includes(m));
}

/**
 * Adds a method. Its option keys must not clash with another method's (they share the flat
 * stage-2 configuration); a name already taken is refused.
 */
export function registerClassifier<S extends z.ZodRawShape>(entry: MethodEntry<S>): void {
  if (!/^[a-z][a-z0-9-]*$/.test(entry.name))
    throw new ConfigError(
      `registerClassifier: name '${entry.name}' must be lower-case letters, digits and dashes`,
    );
  if (entry.colour !== undefined && !/^#[0-9a-fA-F]{6}$/.test(entry.colour))
    throw new ConfigError(
      `registerClassifier: colour '${entry.colour}' of '${entry.name}' must be #rrggbb (six hexadecimal digits)`,
    );
  if (entry.name === 'all' || hasMethod(entry.name))
    throw new ConfigError(`registerClassifier: a method named '${entry.name}' exists already`);
  const taken = new Map(methodEntries().flatMap((e) => Object.keys(e.options.shape).map((k) => [k, e.name])));
  for (const k of Object.keys(entry.options.shape)) {
    if (taken.has(k))
      throw new ConfigError(
        `registerClassifier: option '${k}' of '${entry.name}' is taken by '${taken.get(k)}'`,
      );
  }
  ENTRIES[entry.name] = entry as unknown as MethodEntry;
}

/** Removes a method added with registerClassifier (the built-in ones stay). */
export function unregisterClassifier(name: string): void {
  if (Object.hasOwn(CLASSIFIERS, name)) throw new ConfigError(`unregisterClassifier: '${name}' is built in`);
  delete ENTRIES[name];
}

/**
 * A method's options from flat settings (a stage-2 configuration: other methods' keys are ignored)
 * and `methodOptions[name]` (nested, e.g. for a registered method's settings in a config file),
 * validated by its schema; an error names the method and the setting.
 */
export function methodOptions(
  entry: MethodEntry,
  settings: Record<string, unknown> = {},
): Record<string, unknown> {
  const nested = (settings.methodOptions as Record<string, Record<string, unknown>> | undefined)?.[
    entry.name
  ];
  const r = entry.options.safeParse({ ...settings, ...nested });
  if (!r.success) {
    const i = r.error.issues[0]!;
    const key = String(i.path[0]);
    const got = nested?.[key] ?? settings[key];
    throw new ConfigError(
      `${entry.name}: ${i.path.join('.') || '(options)'}: ${ruleOf(i, got)}${got === undefined ? '' : ` (got ${JSON.stringify(got)})`}`,
    );
  }
  return r.data;
}

export function createClassifier(
  name: MethodName,
  ctx: Stage2Context,
  settings: Record<string, unknown> = {},
): Stage2Classifier {
  const entry = methodEntry(name);
  return entry.create(ctx, methodOptions(entry, settings));
}
