import type { Command } from 'commander';
import { notBuiltYet } from '../errors.ts';

export function registerStatus(program: Command): void {
  program
    .command('status <inventory>')
    .description('Show each host of the cluster: reachable, services, which LB holds the VIP')
    .action(() => notBuiltYet('hasetup status', 'its issue is still open'));
}
