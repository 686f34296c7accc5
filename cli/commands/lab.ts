import type { Command } from 'commander';
import { notBuiltYet } from '../errors.ts';

export function registerLab(program: Command): void {
  program
    .command('lab')
    .description('The lab: the five hosts of the cluster as systemd containers on this Linux machine (up, down, status, ssh, exec)')
    .argument('[action]')
    .action(() => notBuiltYet('hasetup lab', 'its issue is still open'));
}
