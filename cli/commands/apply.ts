import type { Command } from 'commander';
import { notBuiltYet } from '../errors.ts';

export function registerApply(program: Command): void {
  program
    .command('apply <inventory>')
    .description('Apply the roles to every host of the inventory over SSH')
    .action(() => notBuiltYet('hasetup apply', 'its issue is still open'));
}
