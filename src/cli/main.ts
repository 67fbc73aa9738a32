/**
 * The `longtail` command line. Thin: parse, resolve the configuration, call the library.
 * Exit codes: 0 success, 2 a user's mistake (bad flag, bad file), 1 an internal error.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { UserError } from '../errors.ts';
import { printableLines } from '../io/display.ts';
import { registerData } from './data.ts';
import { registerDemo } from './demo.ts';
import { registerDoctor } from './doctor.ts';
import { registerPredictAndExport } from './predict.ts';
import { registerRetrain } from './retrain.ts';
import { registerStudy } from './study.ts';
import { registerTrain } from './train.ts';

function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

export function buildProgram(): Command {
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
    .exitOverride();
  registerDemo(program);
  registerTrain(program);
  registerRetrain(program);
  registerStudy(program);
  registerPredictAndExport(program);
  registerData(program);
  registerDoctor(program);
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
  const reason = typeof e?.code === 'string' ? FS_REASONS[e.code] : undefined;
  if (reason === undefined) return null;
  const verb =
    e.syscall === 'open' || e.syscall === 'scandir' || e.syscall === 'read' ? 'cannot use' : 'cannot write';
  return `${verb} ${e.path ?? '(a file)'}: ${reason} (${e.code})`;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
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
  }
}

const code = await main(process.argv.slice(2));
process.exit(code);
