/**
 * Settings, whatever owns them: the run setting of a registry entry's option (`resnet8Width`,
 * `classAwarePerClass`) and its schema, how a set of settings is validated and its errors worded
 * ("--epochs 0: must be more than 0", the flag or the file it came from), and the mark that a
 * configuration was validated once, so the pipeline does not validate it again.
 */
import type { z } from 'zod';
import { ConfigError } from './errors.ts';
import { nearestName, type RuleIssue, ruleOf } from './registry.ts';

/** `class-aware` -> `classAware` (the type of what `settingKey` does to a registry name). */
type Camel<S extends string> = S extends `${infer H}-${infer T}` ? `${H}${Capitalize<Camel<T>>}` : S;
/** The run setting of option `O` of entry `N`: `class-aware`, `perClass` -> `classAwarePerClass`. */
export type SettingKey<N extends string, O extends string> = `${Camel<N>}${Capitalize<O>}`;
type Intersection<U> = (U extends unknown ? (x: U) => void : never) extends (x: infer I) => void ? I : never;
type GivenOf<E> = E extends { given?: readonly (infer G)[] } ? G : never;

/** An entry of a registry whose options are run settings (a backbone, a sampler). */
export interface OptionsEntry {
  readonly options: z.ZodObject;
  /**
   * Options longtail fills itself (not settings). `| undefined`: an entry made by defineBackbone
   * has `given?: G | undefined` in the emitted .d.ts, which a user compiling with
   * exactOptionalPropertyTypes must still accept (test/package.test.ts).
   */
  readonly given?: readonly string[] | undefined;
}

/**
 * The settings of every entry of `E` as one object shape, typed: option `x` of entry `name` is the
 * optional setting `<name>X` of the option's value type (the entry applies its default).
 */
export type EntrySettings<E extends Record<string, OptionsEntry>> = Intersection<
  {
    [N in keyof E & string]: {
      [O in Exclude<keyof E[N]['options']['shape'] & string, GivenOf<E[N]>> as SettingKey<
        N,
        O
      >]: z.ZodOptional<z.ZodType<z.output<E[N]['options']['shape'][O]>>>;
    };
  }[keyof E & string]
>;

/** The run setting of option `option` of entry `name`: `class-aware`, `perClass` -> `classAwarePerClass`. */
export function settingKey(name: string, option: string): string {
  const camel = name.replace(/[-_:]+([a-zA-Z0-9])/g, (_m, c: string) => c.toUpperCase());
  return `${camel}${option[0]!.toUpperCase()}${option.slice(1)}`;
}

/** The options of an entry a user sets (all but those longtail fills: `given`). */
export function settableOptions(e: OptionsEntry): [option: string, schema: z.ZodType][] {
  return Object.entries(e.options.shape as Record<string, z.ZodType>).filter(
    ([k]) => !(e.given ?? []).includes(k),
  );
}

type Def = { type: string; innerType?: z.ZodType; defaultValue?: unknown };

/**
 * An entry's option as a run setting: its rule, made optional, with its help line and the default
 * the help shows (the entry's own default, which the entry applies when it parses its options, so
 * config.json records only what was set). `description` is used when the option has none.
 */
export function asSetting(schema: z.ZodType, description: string): z.ZodType {
  const meta = (schema.meta() ?? {}) as { description?: string; shownDefault?: string };
  let inner = schema as z.ZodType & { def: Def };
  let fallback: unknown;
  while (inner.def.type === 'optional' || inner.def.type === 'default') {
    if (inner.def.type === 'default') fallback = inner.def.defaultValue;
    inner = inner.def.innerType as typeof inner;
  }
  const shownDefault = meta.shownDefault ?? (fallback === undefined ? undefined : String(fallback));
  return inner.optional().meta({
    description: meta.description ?? description,
    ...(shownDefault !== undefined ? { shownDefault } : {}),
  });
}

/**
 * Every entry's options as run settings (`resnet8Width`, `classAwarePerClass`), each optional: the
 * entry applies its default when it parses its options, so config.json records only what was set,
 * and the help line shows the default (`what` names the kind in a help line without one).
 */
export function entrySettings<E extends Record<string, OptionsEntry>>(
  entries: E,
  what: string,
): EntrySettings<E> {
  const out: Record<string, z.ZodType> = {};
  for (const [name, e] of Object.entries(entries))
    for (const [option, schema] of settableOptions(e))
      out[settingKey(name, option)] = asSetting(schema, `${name} ${what}: ${option}`);
  return out as EntrySettings<E>;
}

/** The options of entry `name` from flat settings (`<name>X`), only those given. */
export function optionsFromSettings(
  name: string,
  e: OptionsEntry,
  settings: Record<string, unknown>,
): Record<string, unknown> {
  const given: Record<string, unknown> = {};
  for (const [option] of settableOptions(e)) {
    const v = settings[settingKey(name, option)];
    if (v !== undefined) given[option] = v;
  }
  return given;
}

/**
 * Configurations already validated by their command's schema. The pipeline's functions take a
 * configuration from the CLI or a library caller: one the CLI parsed is not parsed again.
 */
const parsed = new WeakSet<object>();

/** Marks `value` as the output of its schema (returned as it is). */
export function markParsed<T extends object>(value: T): T {
  parsed.add(value);
  return value;
}

/**
 * `value` if a schema's validation produced it (resolveConfig, markParsed), else `value` validated
 * by `schema`, errors worded as resolveConfig's and naming `source`.
 */
export function parseOnce<S extends z.ZodType>(
  schema: S,
  value: z.input<S> | z.output<S>,
  source: string,
): z.output<S> {
  if (parsed.has(value as object)) return value as z.output<S>;
  return resolveConfig(schema, [{ source, values: value as Record<string, unknown> }]);
}

/** How many configurations were validated by resolveConfig in this process (for tests that count parses). */
export let validations = 0;

/** Validates merged settings against a schema; errors name the field and the source. */
export function resolveConfig<S extends z.ZodType>(
  schema: S,
  layers: { source: string; values: Record<string, unknown> }[],
): z.infer<S> {
  const merged: Record<string, unknown> = {};
  for (const l of layers) for (const [k, v] of Object.entries(l.values)) if (v !== undefined) merged[k] = v;
  validations++;
  const r = schema.safeParse(merged);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const field = issue.path.join('.') || '(config)';
    if (issue.code === 'unrecognized_keys') {
      const keys = (issue as { keys: string[] }).keys;
      const from = [...layers].reverse().find((l) => keys.some((k) => l.values[k] !== undefined))?.source;
      const valid = Object.keys(knownKeys(schema));
      const hints = keys.map((k) => {
        const near = nearestName(k, valid);
        return near !== undefined ? `${k} (did you mean ${near}?)` : k;
      });
      throw new ConfigError(
        `${from ?? '(config)'}: unknown setting(s) ${hints.join(', ')}; settings are the flags in camelCase, e.g. ${valid.slice(0, 6).join(', ')}`,
      );
    }
    const key = String(issue.path[0]);
    const from = [...layers].reverse().find((l) => l.values[key] !== undefined)?.source ?? 'defaults';
    let got: unknown = merged;
    for (const p of issue.path) got = (got as Record<PropertyKey, unknown> | undefined)?.[p as string];
    const rule = ruleOf(issue as RuleIssue, got);
    // Said as the user said it: the flag and its value, or the setting and the file it came from.
    if (from === 'flags' && issue.path.length === 1)
      throw new ConfigError(`${flagOf(key)} ${showValue(got)}: ${rule}`);
    throw new ConfigError(
      `${field}: ${rule}${got !== undefined ? ` (got ${JSON.stringify(got)} from ${from})` : ` (in ${from})`}`,
    );
  }
  return markParsed(r.data as object) as z.infer<S>;
}

/** The keys an object schema accepts (for hints). */
function knownKeys(schema: z.ZodType): Record<string, unknown> {
  return (schema as unknown as { shape?: Record<string, unknown> }).shape ?? {};
}

/** `crtEpochs` -> `--crt-epochs`: every setting's flag is its key in kebab case. */
export const flagOf = (key: string): string =>
  key === 'methods' ? '--method' : `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

const showValue = (v: unknown) => (Array.isArray(v) ? v.join(',') : String(v));

/**
 * Settings renamed since a run was written, old -> new: stage 2's `samplesPerClass` is the
 * class-aware sampler's own `classAwarePerClass` (one idea, one name), for both stages.
 */
export const RENAMED_SETTINGS: Record<string, string> = { samplesPerClass: 'classAwarePerClass' };

/** `values` with renamed settings under their new names (a value given under the new name wins). */
export function withRenamedSettings(values: Record<string, unknown>): Record<string, unknown> {
  const out = { ...values };
  for (const [old, now] of Object.entries(RENAMED_SETTINGS)) {
    if (!(old in out)) continue;
    if (out[now] === undefined) out[now] = out[old];
    delete out[old];
  }
  return out;
}
