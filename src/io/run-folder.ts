/**
 * The run folder: its layout (every file name a run writes, in one place; use
 * `runFile(dir, 'best')`), its lock, its manifest, and the rules for starting a run in a folder:
 * a new run never clobbers an old one unless told (`--force`), `--force` removes only what the
 * manifest says longtail wrote there, default names are unique, and nothing is written before
 * `openRun`, which a command calls only after validating all of its inputs.
 */
import { createHash } from 'node:crypto';
import {
  existsSync,
  linkSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { z } from 'zod';
import { ConfigError, DataError } from '../errors.ts';
import { ruleOf } from '../registry.ts';
import { alive, makeFolder, removeOrphanTemps, setWriteListener, tempPathFor } from './atomic.ts';
import { hashFileInto, onnxIdentitySha256 } from './onnx-external.ts';

export const RUN_FILES = {
  /** The resolved configuration of the command that made the run (validated on read). */
  config: 'config.json',
  /** Stage 1's last completed epoch: weights, momentum, history (resume from here). */
  checkpoint: 'checkpoint.npz',
  /** Stage 1's best validation epoch: the backbone stage 2 and deployment use. */
  best: 'best.npz',
  /** One JSON line per completed stage-1 epoch. */
  epochs: 'epochs.jsonl',
  /** Train / val / test features of the best backbone, and its classifier. */
  features: 'features.npz',
  /** Stage 1's summary once it has finished: history, best epoch, seconds. */
  stage1: 'stage1.json',
  /** Every stage-2 classifier folded into one linear layer (arrays) ... */
  classifiers: 'classifiers.npz',
  /** ... and their record: methods, class names, the backbone they were trained on. */
  classifiersRecord: 'classifiers.json',
  results: 'results.json',
  resultsMarkdown: 'results.md',
  report: 'report.html',
  /** Folder of charts: SVG, PNG and Vega-Lite spec per chart. */
  charts: 'charts',
  /** Where `retrain --run X` keeps its results and classifiers, inside X. */
  stage2: 'stage2',
  /**
   * A run whose backbone lives outside it (an ONNX file): how to build it, the file and its
   * SHA-256. Its presence replaces best.npz as the backbone's identity.
   */
  backbone: 'backbone.json',
  /** A folder of runs over seeds (`demo --seeds`): mean +- std per method, as JSON ... */
  seedSummary: 'summary.json',
  /** ... and as a table. */
  seedSummaryMarkdown: 'summary.md',
  /** A sampler study (`study samplers`): the grid, its means and the paper's findings ... */
  study: 'study.json',
  /** ... as a table ... */
  studyMarkdown: 'study.md',
  /** ... and its chart: the base name of study.vl.json, study.svg and study.png. */
  studyChart: 'study',
  /** Held while a command writes the folder. */
  lock: '.longtail.lock',
  /** What longtail wrote in the folder, by command: all that `--force` may remove. */
  manifest: '.longtail-manifest.json',
} as const;

export type RunFile = keyof typeof RUN_FILES;

/** The path of one of a run folder's files. */
export function runFile(dir: string, file: RunFile): string {
  return join(dir, RUN_FILES[file]);
}

/**
 * A run file read as JSON and validated by its schema, once: the typed reader of that file
 * (readStage1Summary, readExternalBackbone; config.json's is config/schema.ts's readRunConfig, as
 * its schema is composed above this folder). Null when the file is absent; a damaged one is a
 * DataError naming the file, the field and the rule.
 */
export function readRunJson<S extends z.ZodType>(
  dir: string,
  file: RunFile,
  schema: S,
  what: string,
): z.output<S> | null {
  const path = runFile(dir, file);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new DataError(
      `${path}: not valid JSON (${(e as Error).message.split('\n')[0]}; the run folder is damaged)`,
    );
  }
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const i = r.error.issues[0]!;
  let got: unknown = value;
  for (const k of i.path) got = (got as Record<PropertyKey, unknown> | undefined)?.[k as string];
  throw new DataError(
    `${path}: not ${what}: ${i.path.join('.') || '(file)'} ${ruleOf(i, got)} (the run folder is damaged)`,
  );
}

/** One completed stage-1 epoch, as stage1.json, checkpoints and results.json record it. */
export const EpochRecordSchema = z.object({
  epoch: z.number().int().positive(),
  lr: z.number(),
  loss: z.number(),
  trainAcc: z.number(),
  valAcc: z.number().nullable(),
  imagesPerSec: z.number(),
  seconds: z.number(),
});

/** What stage1.json holds (and results.json's `stage1`): stage 1's summary once it has finished. */
export const Stage1SummarySchema = z.object({
  history: z.array(EpochRecordSchema),
  bestEpoch: z.number().int(),
  bestValAcc: z.number().nullable(),
  seconds: z.number(),
  /** 'percent' (absent in stage-1 summaries written before 0.2: fractions). */
  accuracyUnit: z.literal('percent').optional(),
});
export type Stage1SummaryFile = z.infer<typeof Stage1SummarySchema>;

/** A run's stage1.json, validated; null when stage 1 has not finished (or the run has none). */
export function readStage1Summary(dir: string): Stage1SummaryFile | null {
  return readRunJson(dir, 'stage1', Stage1SummarySchema, 'a stage-1 summary');
}

/** Who holds a run folder's lock. */
export interface LockInfo {
  pid: number;
  host: string;
  command: string;
  startedAt: string;
}

function holderOf(text: string): LockInfo | null {
  let info: LockInfo;
  try {
    info = JSON.parse(text) as LockInfo;
  } catch {
    // Garbage (the lock is written whole by a link, so never half-written): held; the message says how to clear it.
    return { pid: 0, host: '?', command: '?', startedAt: '?' };
  }
  if (info.host === hostname() && info.pid !== process.pid && !alive(info.pid)) return null;
  return info;
}

/** The lock's holder, or null when the folder is free (no lock, or one left by a dead process here). */
export function lockHolder(dir: string): LockInfo | null {
  let text: string;
  try {
    text = readFileSync(runFile(dir, 'lock'), 'utf8');
  } catch {
    return null;
  }
  return holderOf(text);
}

function heldMessage(dir: string, h: LockInfo): string {
  return (
    `${dir} is in use by another longtail process (${h.command}, pid ${h.pid} on ${h.host}, since ${h.startedAt}); ` +
    `wait for it to finish, or delete ${runFile(dir, 'lock')} if that process is gone`
  );
}

/** Refuses when another live process holds `dir`'s lock (for commands that only read a run). */
export function assertNotLocked(dir: string): void {
  const h = lockHolder(dir);
  if (h && h.pid !== process.pid) throw new ConfigError(heldMessage(dir, h));
}

/** Locks this process holds, by path, with how many times each was taken (a lock is re-entrant). */
const held = new Map<string, number>();
let exitHookInstalled = false;

/** Creates `path` holding `text` only if it does not exist, whole (a hard link of a finished temp file). */
function createWhole(path: string, text: string): boolean {
  const tmp = tempPathFor(path);
  writeFileSync(tmp, text, { flag: 'wx' });
  try {
    linkSync(tmp, path);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  } finally {
    rmSync(tmp, { force: true });
  }
}

const sleep = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/**
 * Takes `dir`'s lock for this process: an exclusive create of `.longtail.lock` (like git's
 * index.lock), written whole. A lock left by a process that no longer runs on this host is taken
 * over, by whoever first creates `.longtail.lock.takeover` (O_EXCL) and, holding it, still finds
 * the same stale lock: two processes never both take over. The lock is released by `release()`
 * or when the process exits; taking a lock this process already holds nests.
 */
export function acquireLock(dir: string, command: string): { release(): void } {
  const path = runFile(dir, 'lock');
  const count = held.get(path);
  if (count !== undefined && lockHolder(dir)?.pid === process.pid) {
    held.set(path, count + 1);
    return { release: once(() => releasePath(path)) };
  }
  const info: LockInfo = { pid: process.pid, host: hostname(), command, startedAt: new Date().toISOString() };
  const text = JSON.stringify(info);
  const takeover = `${path}.takeover`;
  for (let attempt = 0; ; attempt++) {
    if (createWhole(path, text)) break;
    let seen: string;
    try {
      seen = readFileSync(path, 'utf8');
    } catch {
      continue; // released meanwhile: try again
    }
    const h = holderOf(seen);
    if (h !== null) throw new ConfigError(heldMessage(dir, h));
    // Stale. Only the process holding the takeover file may replace it.
    if (!createWhole(takeover, text)) {
      if (attempt > 400)
        throw new ConfigError(
          `${dir}: another process is taking over its stale lock; try again, or delete ${takeover} if no longtail process runs`,
        );
      sleep(5);
      continue;
    }
    try {
      let now: string | null;
      try {
        now = readFileSync(path, 'utf8');
      } catch {
        now = null;
      }
      // Someone else took it over before this process held the takeover file: theirs now.
      if (now !== null && now !== seen) {
        const h2 = holderOf(now);
        if (h2 !== null) throw new ConfigError(heldMessage(dir, h2));
      }
      rmSync(path, { force: true });
      if (!createWhole(path, text)) {
        const h3 = lockHolder(dir);
        throw new ConfigError(heldMessage(dir, h3 ?? info));
      }
      break;
    } finally {
      rmSync(takeover, { force: true });
    }
  }
  held.set(path, 1);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => {
      for (const p of held.keys()) rmSync(p, { force: true });
    });
  }
  return { release: once(() => releasePath(path)) };
}

function releasePath(path: string): void {
  const n = held.get(path);
  if (n === undefined) return;
  if (n > 1) held.set(path, n - 1);
  else {
    held.delete(path);
    rmSync(path, { force: true });
  }
}

function once(f: () => void): () => void {
  let done = false;
  return () => {
    if (!done) {
      done = true;
      f();
    }
  };
}

/** A run folder chosen but not yet touched: nothing is written until `openRun`. */
export interface RunPlan {
  dir: string;
  command: string;
  /** The folder was named by default (`runs/<command>-<time>`): a taken name moves to `-2`, `-3`, ... */
  isDefault: boolean;
  /** Replace an existing run's files (`--force`). */
  force: boolean;
  /** Continue the run already in the folder (`--resume`). */
  resume: boolean;
  /**
   * The run this folder is part of (`retrain --run X` writes X/stage2): its lock is held too, so
   * a new `train --force X` cannot replace X while its stage 2 is written, and the sub-run is
   * recorded in X's manifest (a `--force` of X removes it).
   */
  within?: string;
}

export function timestamp(d = new Date()): string {
  return d.toISOString().replace(/[:]/g, '-').replace(/\..+$/, '');
}

function nonEmpty(dir: string): boolean {
  try {
    return readdirSync(dir).some((f) => f !== RUN_FILES.lock);
  } catch {
    return false;
  }
}

function listed(names: string[]): string {
  return `${names.slice(0, 4).join(', ')}${names.length > 4 ? `, ... (${names.length} in all)` : ''}`;
}

/**
 * Checks where a command will write, before anything is read or trained: `--out` must not be a
 * file, and an existing non-empty folder is refused unless the run is resumed or `--force`d.
 */
export function planRun(
  command: string,
  out: string | undefined,
  opts: { force?: boolean; resume?: boolean; flag?: string; parent?: string; within?: string } = {},
): RunPlan {
  const flag = opts.flag ?? '--out';
  const isDefault = out === undefined;
  const dir = out ?? join(opts.parent ?? 'runs', `${command.replace(/\s+/g, '-')}-${timestamp()}`);
  const plan: RunPlan = {
    dir,
    command,
    isDefault,
    force: opts.force ?? false,
    resume: opts.resume ?? false,
    ...(opts.within !== undefined ? { within: opts.within } : {}),
  };
  if (!existsSync(dir)) return plan;
  if (!statSync(dir).isDirectory()) throw new ConfigError(`${flag} ${dir}: is a file, expected a folder`);
  // A forced folder is checked by openRun (checkForce), after the command has validated its inputs.
  if (isDefault || plan.resume || plan.force || !nonEmpty(dir)) return plan;
  const names = readdirSync(dir).filter((f) => f !== RUN_FILES.lock);
  throw new ConfigError(
    `${flag} ${dir}: the folder is not empty (${listed(names)}); ` +
      'choose a new folder, or --force to replace the run in it (only what longtail recorded writing there is removed)',
  );
}

/** An open run folder, locked by this process. */
export interface RunFolder {
  dir: string;
  path(file: RunFile): string;
  release(): void;
}

/** Creates (or, for --resume / --force, takes over) the planned folder and locks it. */
export function openRun(plan: RunPlan): RunFolder {
  let dir = plan.dir;
  const outer = plan.within !== undefined ? acquireLock(plan.within, plan.command) : null;
  let lock: { release(): void };
  try {
    makeFolder(dirname(dir));
    if (plan.isDefault) {
      // Two runs started in the same second must not share a folder: mkdir is the arbiter.
      for (let n = 2; ; n++) {
        try {
          mkdirSync(dir);
          break;
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
          dir = `${plan.dir}-${n}`;
        }
      }
    } else makeFolder(dir);
    lock = acquireLock(dir, plan.command);
  } catch (e) {
    outer?.release();
    throw e;
  }
  const release = () => {
    closeManifest(dir);
    lock.release();
    outer?.release();
  };
  try {
    removeOrphanTemps(dir);
    if (!plan.resume && nonEmpty(dir)) {
      if (!plan.force)
        throw new ConfigError(
          `${dir}: the folder is not empty (another run started in it); use --force to replace it`,
        );
      checkForce(dir, '--out');
      clearRun(dir);
    }
    if (plan.within !== undefined) recordSubRun(plan.within, dir, plan.command);
    else recordNested(dir, plan.command);
    openManifest(dir, plan.command);
  } catch (e) {
    release();
    throw e;
  }
  return { dir, path: (f) => runFile(dir, f), release };
}

// ---------------------------------------------------------------------------------------------
// The manifest: what longtail wrote in a run folder, kept as the run goes (every atomic write in
// an open folder is recorded, each sub-run opened inside it too). `--force` removes exactly that.

/** One thing longtail wrote: a file, or (`run`) a run folder inside this one with its own manifest. */
export interface ManifestEntry {
  path: string;
  command: string;
  run?: true;
}

interface Manifest {
  longtail: 'run-manifest';
  version: 1;
  entries: ManifestEntry[];
}

/** Folders open in this process, by absolute path: the command writing each and its entries. */
const openFolders = new Map<string, { command: string; entries: Map<string, ManifestEntry> }>();

/** The manifest of `dir`: null when there is none; a damaged one is refused (nothing is guessed). */
export function readManifest(dir: string): ManifestEntry[] | null {
  const p = runFile(dir, 'manifest');
  let text: string;
  try {
    text = readFileSync(p, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  try {
    const m = JSON.parse(text) as Manifest;
    if (m.longtail !== 'run-manifest' || !Array.isArray(m.entries)) throw new Error('not a run manifest');
    for (const e of m.entries) {
      const parts = typeof e?.path === 'string' ? e.path.split('/') : [];
      // Only plain relative paths inside the folder: a manifest must never remove anything outside it.
      if (parts.length === 0 || parts.some((x) => x === '' || x === '.' || x === '..' || x.includes('\\')))
        throw new Error(`entry ${JSON.stringify(e?.path)} is not a path inside the folder`);
    }
    return m.entries;
  } catch (e) {
    throw new ConfigError(
      `${p}: not a longtail run manifest (${(e as Error).message.split('\n')[0]}); --force will not guess what to remove: delete the run yourself, or choose a new folder`,
    );
  }
}

function saveManifest(dir: string, entries: Iterable<ManifestEntry>): void {
  const p = runFile(dir, 'manifest');
  const m: Manifest = { longtail: 'run-manifest', version: 1, entries: [...entries] };
  // Renamed into place (never half-written); not fsynced: losing it to a power cut only makes --force refuse more.
  const tmp = tempPathFor(p);
  writeFileSync(tmp, `${JSON.stringify(m, null, 1)}\n`, { flag: 'wx' });
  renameSync(tmp, p);
}

function openManifest(dir: string, command: string): void {
  const abs = resolve(dir);
  const entries = new Map((readManifest(dir) ?? []).map((e) => [e.path, e]));
  openFolders.set(abs, { command, entries });
  saveManifest(dir, entries.values());
  setWriteListener(recordWrite);
}

function closeManifest(dir: string): void {
  openFolders.delete(resolve(dir));
  if (openFolders.size === 0) setWriteListener(null);
}

/** The innermost folder open in this process that holds `path`, and the path relative to it. */
function ownerOf(path: string): [string, string] | null {
  let best: string | null = null;
  for (const d of openFolders.keys())
    if (path.startsWith(d + sep) && (best === null || d.length > best.length)) best = d;
  return best === null ? null : [best, relative(best, path).split(sep).join('/')];
}

function add(dir: string, entry: ManifestEntry): void {
  const f = openFolders.get(dir);
  if (f === undefined) {
    const entries = new Map((readManifest(dir) ?? []).map((e) => [e.path, e]));
    if (entries.has(entry.path)) return;
    entries.set(entry.path, entry);
    saveManifest(dir, entries.values());
    return;
  }
  if (f.entries.has(entry.path)) return;
  f.entries.set(entry.path, entry);
  saveManifest(dir, f.entries.values());
}

/**
 * Records that longtail wrote `path` (atomic writes report themselves; a file appended to, like
 * epochs.jsonl, is reported by its writer), in the manifest of the innermost open run folder.
 */
export function recordWrite(path: string): void {
  const abs = resolve(path);
  const o = ownerOf(abs);
  if (o === null) return;
  const [dir, rel] = o;
  if (rel === RUN_FILES.manifest || rel === RUN_FILES.lock) return;
  add(dir, { path: rel, command: openFolders.get(dir)!.command });
}

/** A run opened inside another (a seed of `demo --seeds`, a study's cell, `retrain --run X`'s stage2/). */
function recordSubRun(within: string, dir: string, command: string): void {
  const rel = relative(resolve(within), resolve(dir)).split(sep).join('/');
  if (rel === '' || rel.startsWith('..')) return;
  add(resolve(within), { path: rel, command, run: true });
}

/** Commands opened inside a folder this process has open record themselves there as sub-runs. */
function recordNested(dir: string, command: string): void {
  const o = ownerOf(resolve(dir));
  if (o !== null) add(o[0], { path: o[1], command, run: true });
}

/**
 * What a `--force` of `dir` would remove, checked before anything is: refuses a damaged manifest,
 * a sub-run another process holds, and any file or folder a run writes (config.json,
 * results.md, charts/, ...) that is not in the manifest: a user's own file of that name, or a
 * run from a longtail that kept no manifest. Those are never removed, and a new run would
 * overwrite them, so the user decides. Files with other names are kept and do not stop a run.
 */
export function checkForce(dir: string, flag = '--out'): void {
  const entries = readManifest(dir) ?? [];
  const mine = new Set(entries.map((e) => e.path.split('/')[0]!));
  const runNames = new Set<string>(Object.values(RUN_FILES));
  const foreign = readdirSync(dir).filter(
    (f) =>
      !mine.has(f) &&
      f !== RUN_FILES.lock &&
      f !== RUN_FILES.manifest &&
      (runNames.has(f) || CHART_EXTENSIONS.some((x) => f === RUN_FILES.studyChart + x)),
  );
  if (foreign.length > 0) {
    const why = existsSync(runFile(dir, 'manifest'))
      ? `longtail did not record writing ${foreign.length > 1 ? 'them' : 'it'} there`
      : `the folder has no ${RUN_FILES.manifest} (a run from an older longtail, or your own files)`;
    throw new ConfigError(
      `${flag} ${dir}: --force removes only what longtail recorded writing, and ${listed(foreign)} ${foreign.length > 1 ? 'are' : 'is'} not recorded (${why}); ` +
        'move or delete them yourself, or choose a new folder',
    );
  }
  for (const e of entries) {
    if (!e.run) continue;
    const sub = join(dir, e.path);
    if (!existsSync(sub)) continue;
    assertNotLocked(sub);
    checkForce(sub, flag);
  }
}

/** Removes what `dir`'s manifest records (sub-runs through theirs), then folders left empty by that. */
function clearRun(dir: string): void {
  const entries = readManifest(dir);
  if (entries === null) return;
  for (const e of entries) {
    const target = join(dir, ...e.path.split('/'));
    if (e.run) {
      if (!existsSync(target)) continue;
      const lock = acquireLock(target, 'force');
      try {
        clearRun(target);
      } finally {
        lock.release();
      }
    } else rmSync(target, { force: true });
    // A sub-run emptied by that, and folders longtail made for the entry (charts/, a study's
    // sampler folder), go once empty; never `dir` itself.
    for (
      let d = e.run ? target : dirname(target);
      d.length > dir.length && d.startsWith(dir);
      d = dirname(d)
    ) {
      try {
        if (readdirSync(d).length > 0) break;
        rmSync(d, { recursive: true, force: true });
      } catch {
        if (existsSync(d)) break;
      }
    }
  }
  rmSync(runFile(dir, 'manifest'), { force: true });
}

/** Chart files are written as NAME.vl.json, NAME.svg and NAME.png (report/render.ts). */
const CHART_EXTENSIONS = ['.vl.json', '.svg', '.png'];

/** What backbone.json holds. */
const ExternalBackboneSchema = z.object({
  /** The registry spec that rebuilds it ({ name: 'onnx', options: { path, ... } }). */
  spec: z.object({ name: z.string(), options: z.record(z.string(), z.unknown()) }),
  /** The file whose bytes are the backbone, absolute, as it was when the run was written: a hint. */
  file: z.string(),
  /** The same file relative to the run folder (tried first, so a run moved with its model works); absent in older runs. */
  relativeFile: z.string().optional(),
  sha256: z.string(),
  inputShape: z.tuple([z.number(), z.number(), z.number()]),
  numClasses: z.number().int(),
  /**
   * The preprocessing contract the features were extracted with (data/preprocess.ts, checked by
   * its reader with checkContract); absent in older runs.
   */
  preprocessing: z.unknown().optional(),
});
export type ExternalBackbone = z.infer<typeof ExternalBackboneSchema>;

/** The flag of predict, export and retrain that gives an external backbone's new place. */
export const BACKBONE_FILE_FLAG = '--backbone-file';

/** A run's backbone.json, validated; null for a run whose backbone it trained itself. */
export function readExternalBackbone(dir: string): ExternalBackbone | null {
  return readRunJson(dir, 'backbone', ExternalBackboneSchema, 'a longtail backbone record');
}

/** SHA-256 of a regular file, or why there is none ('missing', 'not a file'): a FIFO would hang the hash. */
function hashIfFile(path: string): string {
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(path);
  } catch {
    return 'missing';
  }
  return st.isFile() ? fileSha256(path) : 'not a file';
}

/**
 * Where an external backbone is now: `given` (the --backbone-file flag), else the path relative
 * to the run folder, else the absolute one recorded; each checked by SHA-256, so a moved or
 * copied run (or model) is found and a changed model is never used. The error names every file
 * looked for and the flag that points at the new place.
 */
export function locateExternalBackbone(dir: string, ext: ExternalBackbone, given?: string): string {
  const want = ext.sha256;
  const short = (h: string) => h.slice(0, 12);
  if (given !== undefined) {
    const p = resolve(given);
    const now = hashIfFile(p);
    if (now === want) return p;
    throw new DataError(
      `${BACKBONE_FILE_FLAG} ${given}: ${now === 'missing' || now === 'not a file' ? `${now === 'missing' ? 'no such file' : 'not a regular file'}` : `is not the run's backbone (sha256 ${short(now)}, ${dir} was made with ${short(want)})`}`,
    );
  }
  const candidates = [
    ...(ext.relativeFile !== undefined ? [resolve(dir, ext.relativeFile)] : []),
    resolve(ext.file),
  ].filter((p, i, a) => a.indexOf(p) === i);
  const seen: string[] = [];
  for (const p of candidates) {
    const now = hashIfFile(p);
    if (now === want) return p;
    seen.push(
      now === 'missing' || now === 'not a file'
        ? `${p} (${now === 'missing' ? 'missing' : 'not a regular file'})`
        : `${p} (changed: sha256 ${short(now)})`,
    );
  }
  throw new DataError(
    `${dir}: its backbone (sha256 ${short(want)}) is not where the run recorded it: looked for ${seen.join(', ')}; give its new place with ${BACKBONE_FILE_FLAG} PATH`,
  );
}

/**
 * The backbone's identity file of a stage-1 run: its best.npz, or for an external backbone the
 * file backbone.json names (an .onnx), found and checked by locateExternalBackbone. Stage-2
 * results record its SHA-256.
 */
export function backboneIdentityFile(dir: string, backboneFile?: string): string {
  const ext = readExternalBackbone(dir);
  return ext ? locateExternalBackbone(dir, ext, backboneFile) : runFile(dir, 'best');
}

/** SHA-256 of a file, hex: the identity of a backbone (its best.npz or .onnx) that stage-2 results record. */
export function fileSha256(path: string): string {
  // An .onnx's identity covers its external data files too (io/onnx-external.ts).
  if (!path.endsWith('.npz')) return onnxIdentitySha256(path);
  const h = createHash('sha256');
  hashFileInto(h, path);
  return h.digest('hex');
}
