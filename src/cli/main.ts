/**
 * The `longtail` command line. Thin: parse, resolve the configuration, call the library.
 * Exit codes: 0 success, 2 a user's mistake (bad flag, bad file), 1 an internal error.
 */
import { readFileSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError } from 'commander';
import { UserError } from '../errors.ts';
import { printableLines } from '../io/display.ts';

type Register = (program: Command) => void;

/**
 * The commands, in help order, with the one-line summary the top-level help shows. A command's
 * module (and with it TensorFlow.js, the registries, sharp, ...) is imported only when that command
 * runs or its own help is asked for: `longtail --version` and `longtail --help` load none of it.
 * Commands sharing a module (predict, export) share its loader.
 */
const COMMANDS: Record<string, { summary: string; load: () => Promise<Register> }> = {
  demo: {
    summary: 'the whole pipeline on the bundled data (what npm start runs)',
    load: async () => (await import('./demo.ts')).registerDemo,
  },
  train: {
    summary: 'stage 1: joint training, checkpoints, features',
    load: async () => (await import('./train.ts')).registerTrain,
  },
  retrain: {
    summary: 'stage 2: cRT, tau-norm, LWS, NCM and the later baselines on a run or a feature file',
    load: async () => (await import('./retrain.ts')).registerRetrain,
  },
  study: {
    summary: "reproduce the paper's studies",
    load: async () => (await import('./study.ts')).registerStudy,
  },
  predict: {
    summary: 'classify image files, folders or list files with a trained model',
    load: async () => (await import('./predict.ts')).registerPredictAndExport,
  },
  export: {
    summary: 'write the model with a folded classifier as a TensorFlow.js graph model or ONNX',
    load: async () => (await import('./predict.ts')).registerPredictAndExport,
  },
  report: {
    summary: 'compare runs on one page: mean ± std per method over runs that share a configuration',
    load: async () => (await import('./report.ts')).registerReport,
  },
  data: { summary: 'inspect data sets', load: async () => (await import('./data.ts')).registerData },
  doctor: {
    summary: 'show the compute backend, versions, the machine and whether the bundled data is intact',
    load: async () => (await import('./doctor.ts')).registerDoctor,
  },
};

/** The command an argument list runs (`help NAME` counts as NAME), or null. */
function commandOf(argv: string[]): string | null {
  const words = argv.filter((a) => !a.startsWith('-'));
  const first = words[0] === 'help' ? words[1] : words[0];
  return first !== undefined && Object.hasOwn(COMMANDS, first) ? first : null;
}

function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

/**
 * The command line for `argv`: the command it names fully defined, the others as names and
 * summaries only (enough for the top-level help and "did you mean"); with `all`, every command.
 */
export async function buildProgram(argv: string[] = [], { all = false } = {}): Promise<Command> {
  const program = new Command();
  program
    .name('longtail')
    .description(
      'Long-tailed image recognition by decoupling representation and classifier (Kang et al., ICLR 2020). ' +
        'Stage 1 trains a backbone with ordinary sampling; stage 2 re-balances only the classifier ' +
        '(cRT, tau-norm, LWS, NCM); results are compared by many-, medium- and few-shot accuracy.',
    )
    .version(packageVersion(), '-V, --version', 'print the version')
    .showHelpAfterError('(run with --help for usage)')
    // One prefix for every error, commander's own ("error: unknown option") included.
    .configureOutput({ outputError: (text, write) => write(text.replace(/^error: /, 'longtail: ')) })
    .exitOverride();
  const wanted = commandOf(argv);
  const names = all ? Object.keys(COMMANDS) : wanted === null ? [] : [wanted];
  const registers = new Set(await Promise.all(names.map((n) => COMMANDS[n]!.load())));
  for (const register of registers) register(program);
  for (const [name, { summary }] of Object.entries(COMMANDS)) {
    const loaded = program.commands.find((c) => c.name() === name);
    // A loaded command keeps its longer description for its own --help; the list shows the summary.
    if (loaded !== undefined) loaded.summary(summary);
    else program.command(name).description(summary);
  }
  return program;
}

/** File-system failures a user can fix (permissions, a full disk, a file where a folder belongs). */
const FS_REASONS: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'the file system is read-only',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  ENOTDIR: 'a part of the path is a file, not a folder',
  EISDIR: 'is a folder, expected a file',
  EEXIST: 'a file is in the way (expected a folder)',
  EMFILE: 'too many open files',
};

function fileSystemMessage(err: unknown): string | null {
  const e = err as NodeJS.ErrnoException;
  // A recursive mkdir reports a read-only or forbidden parent as ENOENT (Node): longtail's own
  // folders are made level by level (io/atomic.ts makeFolder) for the real reason; this is the net.
  if (e?.code === 'ENOENT' && e.syscall === 'mkdir')
    return `cannot write ${e.path ?? '(a folder)'}: a folder on the path cannot be created (ENOENT; is the file system read-only?)`;
  const reason = typeof e?.code === 'string' ? FS_REASONS[e.code] : undefined;
  if (reason === undefined) return null;
  const verb =
    e.syscall === 'open' || e.syscall === 'scandir' || e.syscall === 'read' ? 'cannot use' : 'cannot write';
  return `${verb} ${e.path ?? '(a file)'}: ${reason} (${e.code})`;
}

export async function main(argv: string[]): Promise<number> {
  const sigint = new Set(process.listeners('SIGINT'));
  try {
    const program = await buildProgram(argv);
    await program.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version are "errors" to commander with exit code 0.
      return err.exitCode === 0 ? 0 : 2;
    }
    if (err instanceof UserError) {
      process.stderr.write(`longtail: ${printableLines(err.message)}\n`);
      return 2;
    }
    const fsMessage = fileSystemMessage(err);
    if (fsMessage !== null) {
      process.stderr.write(`longtail: ${printableLines(fsMessage)}\n`);
      return 2;
    }
    process.stderr.write(
      `longtail: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    return 1;
  } finally {
    // A command's Ctrl-C handler ends with the command, also when it failed before removing it:
    // `main` may run again in the same process (the tests' in-process entry).
    for (const l of process.listeners('SIGINT')) if (!sigint.has(l)) process.off('SIGINT', l);
  }
}

/** Resolves once everything written to the stream so far has been handed to the OS. */
const flushed = (s: NodeJS.WriteStream) => new Promise<void>((resolve) => s.write('', () => resolve()));

/**
 * `longtail` as a process: `main`, then exit with its code. bin/longtail.js calls this, and so does
 * this module when it is the script Node started (`node dist/cli/main.js`); importing the module
 * for `main` alone (the tests' in-process entry, test/helpers/cli.ts) runs nothing.
 */
export async function runAsProcess(argv: string[] = process.argv.slice(2)): Promise<never> {
  const code = await main(argv);
  // process.exit is needed (worker threads and native handles may keep the loop alive), but it would
  // cut a large piped stdout short (a 438 KB `predict --json` was seen truncated): flush first.
  await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
  process.exit(code);
}

/** Whether Node was started on this file (symbolic links resolved). */
function startedAsScript(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false; // `node -e`, or a script path that no longer exists
  }
}

if (startedAsScript()) await runAsProcess();
