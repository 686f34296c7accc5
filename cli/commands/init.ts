import type { Command } from 'commander';
import { notBuiltYet } from '../errors.ts';

export function registerInit(program: Command): void {
  program
    .command('init [dir]')
    .description('Interactive wizard: ask for the hosts, SSH access, VIP and interface, check each host answers, write inventory.yaml and its secrets file')
    .action(() => notBuiltYet('hasetup init', 'its issue is still open'));
}
