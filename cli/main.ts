// hasetup: the command-line entry point. Each command lives in cli/commands/<name>.ts.
import { Command, CommanderError } from 'commander';
import { registerInit } from './commands/init.ts';
import { registerApply } from './commands/apply.ts';
import { registerFailoverTest } from './commands/failover-test.ts';
import { registerLab } from './commands/lab.ts';
import { registerStatus } from './commands/status.ts';
import { UserError } from './errors.ts';

// Output piped into a reader that stops early (`hasetup --help | head`) is no error.
for (const stream of [process.stdout, process.stderr])
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });

const program = new Command();
program
  .name('hasetup')
  .description(
    'Build the "survive the Slashdot effect" cluster over SSH (two load balancers sharing a VIP,\n' +
      'Apache web nodes, a MySQL master) and prove that it survives failures.',
  )
  .version('0.1.0')
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride();

registerInit(program);
registerApply(program);
registerFailoverTest(program);
registerLab(program);
registerStatus(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    process.exitCode = err.exitCode;
  } else if (err instanceof UserError) {
    console.error(`hasetup: ${err.message}`);
    process.exitCode = err.exitCode;
  } else {
    console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
    process.exitCode = 1;
  }
}
