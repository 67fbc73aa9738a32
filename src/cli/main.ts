/**
 * The `longtail` command line. Thin: parse, resolve the configuration, call the library.
 * Exit codes: 0 success, 2 a user's mistake (bad flag, bad file), 1 an internal error.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { UserError } from '../errors.ts';
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
      process.stderr.write(`longtail: ${err.message}\n`);
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
