/**
 * The run folder: its layout (every file name a run writes, in one place; use
 * `runFile(dir, 'best')`), its lock, and the rules for starting a run in a folder: a new run
 * never clobbers an old one unless told (`--force`), default names are unique, and nothing is
 * written before `openRun`, which a command calls only after validating all of its inputs.
 */
import { createHash } from 'node:crypto';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { ConfigError } from '../errors.ts';
import { alive, removeOrphanTemps } from './atomic.ts';

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
} as const;

export type RunFile = keyof typeof RUN_FILES;

/** The path of one of a run folder's files. */
export function runFile(dir: string, file: RunFile): string {
  return join(dir, RUN_FILES[file]);
}

/** Who holds a run folder's lock. */
export interface LockInfo {
  pid: number;
  host: string;
  command: string;
  startedAt: string;
}

/** The lock's holder, or null when the folder is free (no lock, or one left by a dead process here). */
export function lockHolder(dir: string): LockInfo | null {
  let text: string;
  try {
    text = readFileSync(runFile(dir, 'lock'), 'utf8');
  } catch {
    return null;
  }
  let info: LockInfo;
  try {
    info = JSON.parse(text) as LockInfo;
  } catch {
    // A lock being written this instant, or garbage: treat as held, the message says how to clear it.
    return { pid: 0, host: '?', command: '?', startedAt: '?' };
  }
  if (info.host === hostname() && info.pid !== process.pid && !alive(info.pid)) return null;
  return info;
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

const held = new Set<string>();
let exitHookInstalled = false;

/**
 * Takes `dir`'s lock for this process (an exclusive create of `.longtail.lock`, like git's
 * index.lock). A lock left by a process that no longer runs on this host is taken over. The lock
 * is released by `release()` or when the process exits.
 */
export function acquireLock(dir: string, command: string): { release(): void } {
  const path = runFile(dir, 'lock');
  const info: LockInfo = { pid: process.pid, host: hostname(), command, startedAt: new Date().toISOString() };
  for (let attempt = 0; ; attempt++) {
    try {
      writeFileSync(path, JSON.stringify(info), { flag: 'wx' });
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const h = lockHolder(dir);
      if (h !== null || attempt > 2) throw new ConfigError(heldMessage(dir, h ?? info));
      rmSync(path, { force: true }); // stale: its process is gone
    }
  }
  held.add(path);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => {
      for (const p of held) rmSync(p, { force: true });
    });
  }
  return {
    release() {
      if (held.delete(path)) rmSync(path, { force: true });
    },
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
}

export function timestamp(d = new Date()): string {
  return d.toISOString().replace(/[:]/g, '-').replace(/\..+$/, '');
}

function nonEmpty(dir: string): boolean {
  try {
    return readdirSync(dir).length > 0;
  } catch {
    return false;
  }
}

/**
 * Checks where a command will write, before anything is read or trained: `--out` must not be a
 * file, and an existing non-empty folder is refused unless the run is resumed or `--force`d.
 */
export function planRun(
  command: string,
  out: string | undefined,
  opts: { force?: boolean; resume?: boolean; flag?: string; parent?: string } = {},
): RunPlan {
  const flag = opts.flag ?? '--out';
  const isDefault = out === undefined;
  const dir = out ?? join(opts.parent ?? 'runs', `${command.replace(/\s+/g, '-')}-${timestamp()}`);
  const plan = { dir, command, isDefault, force: opts.force ?? false, resume: opts.resume ?? false };
  if (!existsSync(dir)) return plan;
  if (!statSync(dir).isDirectory()) throw new ConfigError(`${flag} ${dir}: is a file, expected a folder`);
  if (isDefault || plan.resume || plan.force || !nonEmpty(dir)) return plan;
  throw new ConfigError(
    `${flag} ${dir}: the folder is not empty (${readdirSync(dir).slice(0, 3).join(', ')}${readdirSync(dir).length > 3 ? ', ...' : ''}); ` +
      'choose a new folder, or --force to replace the run in it (files longtail did not write are kept)',
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
  mkdirSync(dirname(dir), { recursive: true });
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
  } else mkdirSync(dir, { recursive: true });
  const lock = acquireLock(dir, plan.command);
  try {
    removeOrphanTemps(dir);
    if (!plan.resume && nonEmpty(dir)) {
      if (!plan.force && readdirSync(dir).some((f) => f !== RUN_FILES.lock))
        throw new ConfigError(
          `${dir}: the folder is not empty (another run started in it); use --force to replace it`,
        );
      removeRunFiles(dir, true);
    }
  } catch (e) {
    lock.release();
    throw e;
  }
  return { dir, path: (f) => runFile(dir, f), release: lock.release };
}

/** Chart files are written as NAME.vl.json, NAME.svg and NAME.png (report/render.ts). */
const CHART_EXTENSIONS = ['.vl.json', '.svg', '.png'];

/** Commands whose run folder holds other runs (seed-<n>/, a study's cells). */
const FOLDER_OF_RUNS_COMMANDS = new Set(['seeds', 'study']);

/**
 * `--force`: removes what longtail wrote in `dir` (RUN_FILES) and, when the run it replaces was a
 * folder of runs (demo --seeds, study samplers: its config.json says so), the runs below it: any
 * sub-folder with a config.json is a run and is cleaned the same way, and a folder left empty by
 * that is removed. Without this a rerun with fewer seeds would leave the old seeds' runs beside
 * the new ones, and `longtail report` on the folder would mix them. Sub-folders of any other run
 * are not looked into (a user's folder of runs forced by mistake keeps them), and files longtail
 * does not write are kept at every depth.
 */
function removeRunFiles(dir: string, top: boolean): boolean {
  const isRun = top || existsSync(runFile(dir, 'config'));
  let holdsRun = isRun;
  if (!top || FOLDER_OF_RUNS_COMMANDS.has(runCommand(dir))) {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (!entry.isDirectory() || entry.name === RUN_FILES.charts || entry.name === RUN_FILES.stage2)
        continue;
      const sub = join(dir, entry.name);
      if (!removeRunFiles(sub, false)) continue; // no run in it: a folder of the user's, untouched
      holdsRun = true;
      if (readdirSync(sub).length === 0) rmSync(sub, { recursive: true, force: true });
    }
  }
  if (isRun) {
    for (const [key, name] of Object.entries(RUN_FILES)) {
      if (key === 'lock') continue;
      if (key === 'studyChart')
        for (const ext of CHART_EXTENSIONS) rmSync(join(dir, name + ext), { force: true });
      else rmSync(join(dir, name), { recursive: true, force: true });
    }
  }
  return holdsRun;
}

/** The `command` a run folder's config.json records ('' when absent or unreadable). */
function runCommand(dir: string): string {
  try {
    const c = JSON.parse(readFileSync(runFile(dir, 'config'), 'utf8')) as { command?: unknown };
    return typeof c.command === 'string' ? c.command : '';
  } catch {
    return '';
  }
}

/** What backbone.json holds. */
export interface ExternalBackbone {
  /** The registry spec that rebuilds it ({ name: 'onnx', options: { path, ... } }). */
  spec: { name: string; options: Record<string, unknown> };
  /** The file whose bytes are the backbone (absolute path). */
  file: string;
  sha256: string;
  inputShape: [number, number, number];
  numClasses: number;
}

export function readExternalBackbone(dir: string): ExternalBackbone | null {
  const p = runFile(dir, 'backbone');
  if (!existsSync(p)) return null;
  try {
    const v = JSON.parse(readFileSync(p, 'utf8')) as ExternalBackbone;
    if (typeof v.file !== 'string' || typeof v.sha256 !== 'string' || typeof v.spec?.name !== 'string')
      throw new Error('needs spec, file, sha256');
    return v;
  } catch (e) {
    throw new ConfigError(`${p}: not a longtail backbone record (${(e as Error).message.split('\n')[0]})`);
  }
}

/**
 * The backbone's identity file of a stage-1 run: its best.npz, or for an external backbone the
 * file backbone.json names (an .onnx). Stage-2 results record its SHA-256.
 */
export function backboneIdentityFile(dir: string): string {
  return readExternalBackbone(dir)?.file ?? runFile(dir, 'best');
}

/** SHA-256 of a file, hex: the identity of a backbone (its best.npz or .onnx) that stage-2 results record. */
export function fileSha256(path: string): string {
  const h = createHash('sha256');
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
  return h.digest('hex');
}
