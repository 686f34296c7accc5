// hasetup: the command-line entry point. Each command lives in cli/commands/<name>.ts.
// Exit codes: 0 done, 1 a failed run (a task failed, a host was unreachable, a check did not pass),
// 2 a usage error (a wrong command line), 130 interrupted.
import { Command, CommanderError } from 'commander';
import { registerInit } from './commands/init.ts';
import { registerApply } from './commands/apply.ts';
import { registerFailoverTest } from './commands/failover-test.ts';
import { registerLab } from './commands/lab.ts';
import { registerStatus } from './commands/status.ts';
import { registerDrain } from './commands/drain.ts';
import { registerDeploy } from './commands/deploy.ts';
import { UserError } from './errors.ts';
import { VERSION } from './version.ts';

// Output piped into a reader that stops early (`hasetup --help | head`) is no error.
for (const stream of [process.stdout, process.stderr])
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });

const debug = () => process.argv.includes('--debug') || process.env.HASETUP_DEBUG === '1';

const program = new Command();
program
  .name('hasetup')
  .description(
    'Build the "survive the Slashdot effect" cluster over SSH (two load balancers sharing a VIP, Apache web nodes, a MySQL master) and prove that it survives failures.',
  )
  .version(VERSION)
  .option('--debug', 'on an unexpected error, print its stack (also HASETUP_DEBUG=1)')
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride();

registerInit(program);
registerApply(program);
registerFailoverTest(program);
registerLab(program);
registerStatus(program);
registerDrain(program);
registerDeploy(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // --help and --version end with code 0; every other complaint of commander is a usage error
    process.exitCode = err.exitCode === 0 ? 0 : 2;
  } else if (err instanceof UserError) {
    console.error(`hasetup: ${err.message}`);
    process.exitCode = err.exitCode;
  } else {
    const e = err instanceof Error ? err : new Error(String(err));
    if (debug()) console.error(e.stack ?? e.message);
    else console.error(`hasetup: unexpected error: ${e.message}\n(run again with --debug, or HASETUP_DEBUG=1, for the stack trace)`);
    process.exitCode = 1;
  }
}
