/**
 * Flag groups shared by commands, and the one place flags become a configuration:
 * defaults < --config file < flags, validated once by the command's schema (src/config/schema.ts).
 * Flags are derived from the schemas when a command is built, so a data source, backbone or
 * method registered before then has its flags and help lines.
 */
import { type Command, CommanderError, Help, InvalidArgumentError, Option } from 'commander';
import { stringify } from 'yaml';
import type { z } from 'zod';
import { methodEntries, methodNames } from '../classifiers/registry.ts';
import { dataSettings, methodSettings, readConfigFile, stage2SharedSettings } from '../config/schema.ts';
import { flagOf, resolveConfig, withRenamedSettings } from '../settings.ts';
import { backboneGroup, stage1Group } from '../train/joint-config.ts';

/** A numeric flag's parser; `min` refuses values below it (e.g. `--top-k 0`). */
export function num(flag: string, integer = false, min?: number) {
  return (v: string) => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || (integer && !Number.isInteger(n))) {
      throw new InvalidArgumentError(`${flag} expects ${integer ? 'an integer' : 'a number'}, got '${v}'`);
    }
    if (min !== undefined && n < min)
      throw new InvalidArgumentError(`${flag} must be at least ${min}, got ${v}`);
    return n;
  };
}

/** Help groups, in the order `--help` shows them after the common flags. */
export const GROUPS = {
  data: 'Data:',
  backbone: 'Backbone:',
  stage1: 'Stage 1 (representation):',
  stage2: 'Stage 2 (classifier):',
  output: 'Output and run:',
} as const;

/** The flags most runs use: `--help` lists them first, ungrouped. */
const COMMON = new Set(['dataset', 'dataDir', 'backbone', 'methods', 'epochs', 'seed', 'threads']);

/** The value placeholder of a flag, where `<value>` would say less. */
const ARG: Record<string, string> = {
  dataset: 'name',
  backbone: 'name',
  sampler: 'name',
  dataDir: 'dir',
  dataRoot: 'dir',
  trainList: 'file',
  valList: 'file',
  testList: 'file',
  classes: 'file',
  imageSize: 'px',
  onnxInputSize: 'px',
  onnxMean: 'list',
  onnxStd: 'list',
  onnxOutput: 'name',
  onnxFcWeight: 'name',
  onnxFcBias: 'name',
  imbalance: 'IF',
  lr: 'rate',
  stage2Lr: 'rate',
  methods: 'list',
};

/** Short aliases of a few settings' flags. */
const SHORT: Record<string, string> = { epochs: '-e', batchSize: '-b', threads: '-j', methods: '-m' };

/** `--out DIR` and `--force`, for every command that writes a run folder. */
export function addOutOptions(cmd: Command, what: string, defaultDir: string): Command {
  return cmd
    .addOption(
      new Option(
        '-o, --out <dir>',
        `${what} (default: ${defaultDir}); an existing non-empty folder is refused without --force`,
      ).helpGroup(GROUPS.output),
    )
    .addOption(
      new Option(
        '-f, --force',
        'replace the run in an existing --out folder (only the files longtail writes)',
      ).helpGroup(GROUPS.output),
    );
}

/**
 * `-c, --config FILE`: any setting of the command from a YAML or JSON file (flags win), and
 * `--print-config`: the resolved settings as YAML that --config takes back, then exit.
 */
export function addConfigOption(cmd: Command): Command {
  cmd
    .option('-c, --config <file>', 'YAML or JSON file with any of these settings (flags win)')
    .option('--print-config', 'print the resolved settings as YAML (a file --config takes) and exit');
  return addCompactHelp(cmd);
}

/** Groups `--help` folds to one line each (every group but the output flags). */
const folded = (o: Option) => o.helpGroupHeading !== undefined && o.helpGroupHeading !== GROUPS.output;

/**
 * `--help` lists the common flags, the command's own and the output flags, and one line per
 * other group (its first flags and how many it has); `--help-all` lists every flag. Flags added
 * to a group later (another helper's, a registered method's) are folded and counted the same way.
 */
export function addCompactHelp(cmd: Command): Command {
  let all = false;
  cmd.option('--help-all', 'list every flag, group by group (--help folds each group to one line)');
  cmd.on('option:help-all', () => {
    all = true;
    cmd.help();
  });
  cmd.configureHelp({
    visibleOptions(this: Help, c: Command) {
      const visible = Help.prototype.visibleOptions.call(this, c);
      return all ? visible : visible.filter((o) => !folded(o));
    },
    formatHelp(this: Help, c: Command, helper: Help) {
      const text = Help.prototype.formatHelp.call(this, c, helper);
      if (all) return text;
      return `${text}\n${foldedGroups(c, helper.helpWidth ?? 80).join('\n')}\n`;
    },
  });
  return cmd;
}

/** `  Stage 2, cRT: --crt-epochs, --crt-lr, ... (5 flags)`, one line per folded group. */
function foldedGroups(cmd: Command, width: number): string[] {
  const groups = new Map<string, string[]>();
  for (const o of cmd.options) {
    if (o.hidden || !folded(o)) continue;
    const heading = o.helpGroupHeading!;
    groups.set(heading, [...(groups.get(heading) ?? []), o.long ?? o.flags]);
  }
  if (groups.size === 0) return [];
  const lines = ['More settings (--help-all lists each with its help and default):'];
  for (const [heading, flags] of groups) {
    let line = `  ${heading}`;
    const more = (k: number) => (k < flags.length ? `, ... (${flags.length} flags)` : '');
    let k = 0;
    for (; k < flags.length; k++) {
      const next = `${line}${k === 0 ? ' ' : ', '}${flags[k]}`;
      if (next.length + more(k + 1).length > width && k > 0) break;
      line = next;
    }
    lines.push(`${line}${more(k)}`);
  }
  return lines;
}

interface SettingMeta {
  description?: string;
  /** The default the help shows when a loader, not the schema, has it. */
  shownDefault?: string;
}

type Def = {
  type: string;
  innerType?: z.ZodType;
  defaultValue?: unknown;
  element?: z.ZodType;
  /** A pipe's (preprocess's) output schema, which says what the flag's value is. */
  out?: z.ZodType;
};

/**
 * The one flag builder: a setting's flag, value parser, help line and default, all from its zod
 * schema (`.meta({ description, shownDefault })`). Numbers and integers are parsed (the range is the
 * schema's rule, checked when the configuration resolves), enums become choices, arrays of
 * numbers are comma-separated, booleans take no value.
 */
export function settingOption(key: string, schema: z.ZodType, group?: string): Option {
  const meta = (schema.meta() ?? {}) as SettingMeta;
  let t = schema as z.ZodType & { def: Def };
  let fallback: unknown;
  while (t.def.type === 'optional' || t.def.type === 'default' || t.def.type === 'pipe') {
    if (t.def.type === 'default') fallback = t.def.defaultValue;
    t = (t.def.type === 'pipe' ? t.def.out : t.def.innerType) as typeof t;
  }
  const flag = flagOf(key);
  const names = SHORT[key] !== undefined ? `${SHORT[key]}, ${flag}` : flag;
  const shown = meta.shownDefault ?? (fallback === undefined ? undefined : String(fallback));
  const type = t.def.type;
  const description = meta.description ?? key;
  // A list's help says how to write one, unless its example already shows it.
  const listHint = type === 'array' && !/\d,\d/.test(description) ? ', comma-separated' : '';
  const help = `${description}${listHint}${shown === undefined ? '' : ` (default: ${shown})`}`;
  let o: Option;
  if (type === 'enum') {
    o = new Option(`${names} <kind>`, help).choices((t as unknown as { options: string[] }).options);
  } else if (type === 'number') {
    const integer = (t as unknown as { isInt?: boolean }).isInt === true;
    o = new Option(`${names} <${ARG[key] ?? (integer ? 'n' : 'value')}>`, help).argParser(num(flag, integer));
  } else if (type === 'array') {
    const parse = num(flag);
    o = new Option(`${names} <list>`, help).argParser((v: string) =>
      v.split(',').map((x) => parse(x.trim())),
    );
  } else if (type === 'boolean') o = new Option(names, help);
  else o = new Option(`${names} <${ARG[key] ?? 'value'}>`, help);
  // The method flag is singular, its setting plural (`--method crt,lws` is `methods: crt,lws`).
  if (key === 'methods') o.attributeName = () => 'methods';
  return COMMON.has(key) || group === undefined ? o : o.helpGroup(group);
}

/** Adds a flag for every setting of `shape` not already a flag of `cmd`. */
export function addSettings(cmd: Command, shape: Record<string, unknown>, group?: string): Command {
  for (const [key, schema] of Object.entries(shape)) {
    if (key === 'methodOptions') continue; // nested per method: a config file's, not a flag's
    if (cmd.options.some((o) => o.attributeName() === key)) continue;
    cmd.addOption(settingOption(key, schema as z.ZodType, group));
  }
  return cmd;
}

export function addDataOptions(cmd: Command): Command {
  const { manyThreshold, fewThreshold, ...data } = dataSettings();
  addSettings(cmd, data, GROUPS.data);
  return addThresholdOptions(cmd);
}

/** Shot-split thresholds, shared by every command that scores splits. */
export function addThresholdOptions(cmd: Command): Command {
  const { manyThreshold, fewThreshold } = dataSettings();
  return addSettings(cmd, { manyThreshold, fewThreshold }, GROUPS.data);
}

export function addTrainOptions(cmd: Command): Command {
  addSettings(cmd, backboneGroup(), GROUPS.backbone);
  return addSettings(cmd, stage1Group(), GROUPS.stage1);
}

export function addStage2Options(cmd: Command): Command {
  const { methods, ...shared } = stage2SharedSettings();
  cmd.addOption(
    settingOption(
      'methods',
      methods.meta({
        description: `stage-2 methods: ${methodNames().join(', ')}, comma-separated, or all`,
      }),
    ),
  );
  addSettings(cmd, shared, GROUPS.stage2);
  // Each method's own settings, from its registry entry, in a group of its own.
  const settings = methodSettings() as Record<string, z.ZodType>;
  for (const e of methodEntries()) {
    const own = Object.fromEntries(Object.keys(e.options.shape).map((k) => [k, settings[k]]));
    addSettings(cmd, own, `Stage 2, ${e.label}:`);
  }
  return cmd;
}

/** Flags that say where and how to run, not what: never part of a saved configuration. */
const NOT_CONFIG = new Set([
  'config',
  'backboneFile',
  'out',
  'force',
  'json',
  'backend',
  'resume',
  'exportFeatures',
  'quiet',
  'printConfig',
]);

/**
 * Only the settings the user gave (flags and --config), validated by the full schema: for
 * `--resume`, where the saved run supplies the rest and a default must not pass for a choice.
 */
export function givenSettings<S extends z.ZodType>(
  schema: S,
  opts: Record<string, unknown>,
): Partial<z.infer<S>> {
  const layers = settingLayers(opts);
  const all = resolveConfig(schema, layers) as Record<string, unknown>;
  const given = new Set(layers.flatMap((l) => Object.keys(l.values)));
  return Object.fromEntries(Object.entries(all).filter(([k]) => given.has(k))) as Partial<z.infer<S>>;
}

/** Resolves a command's configuration from defaults, --config and flags (one schema per command). */
export function configFromFlags<S extends z.ZodType>(schema: S, opts: Record<string, unknown>): z.infer<S> {
  const cfg = resolveConfig(schema, settingLayers(opts));
  if (opts.printConfig === true) printConfig(cfg as Record<string, unknown>);
  return cfg;
}

/**
 * `--print-config`: the resolved settings as YAML, which `--config` reads back to the same
 * configuration; then the command stops (exit 0) before it does anything.
 */
function printConfig(cfg: Record<string, unknown>): never {
  const set = Object.fromEntries(Object.entries(cfg).filter(([, v]) => v !== undefined));
  process.stdout.write(stringify(set));
  throw new CommanderError(0, 'longtail.printConfig', '');
}

function settingLayers(opts: Record<string, unknown>): { source: string; values: Record<string, unknown> }[] {
  const flags: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(opts)) {
    if (NOT_CONFIG.has(k) || v === undefined) continue;
    flags[k === 'method' ? 'methods' : k] = v;
  }
  const layers: { source: string; values: Record<string, unknown> }[] = [];
  // readConfigFile renames a file's old settings (`samplesPerClass`); the same for a library caller's options.
  const renamed = withRenamedSettings(flags);
  if (typeof opts.config === 'string') {
    // A file may name the methods as the flag does (`method: crt,lws`) or as the schema (`methods`).
    const { method, ...file } = readConfigFile(opts.config);
    layers.push({ source: opts.config, values: method === undefined ? file : { methods: method, ...file } });
  }
  layers.push({ source: 'flags', values: renamed });
  return layers;
}
