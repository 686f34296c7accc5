import type { Command } from 'commander';
import { loadInventory, InventoryError } from '../../inventory/load.ts';
import { secretValues } from '../../inventory/secrets.ts';
import type { Host, Inventory } from '../../inventory/types.ts';
import { UserError } from '../errors.ts';
import { Redactor } from '../engine/redact.ts';
import { JsonReporter, ListrReporter, PlainReporter } from '../engine/report.ts';
import { failedRun, run, type Reporter } from '../engine/runner.ts';
import { SshTransport, type Transport } from '../engine/transport.ts';
import { ROLES } from '../roles.ts';

interface ApplyFlags {
  check?: boolean;
  diff?: boolean;
  limit?: string;
  tags?: string;
  json?: boolean;
}

export function connectHost(inv: Inventory, host: Host): Promise<Transport> {
  return SshTransport.connect({
    name: host.name,
    host: host.ssh.host,
    port: host.ssh.port,
    user: host.ssh.user,
    privateKey: host.ssh.privateKey,
    become: host.ssh.become,
    connectTimeout: host.ssh.connectTimeout,
    knownHosts: host.ssh.knownHosts ?? `${inv.file.replace(/[^/]*$/, '')}.hasetup/known_hosts`,
  });
}

export async function loadOrExplain(file: string): Promise<Inventory> {
  try {
    return await loadInventory(file);
  } catch (e) {
    if (e instanceof InventoryError) throw new UserError(`invalid inventory (nothing was changed on any host):\n${(e as Error).message}`);
    throw e;
  }
}

function plainOutput(): boolean {
  return !process.stdout.isTTY || !!process.env.NO_COLOR || !!process.env.CI;
}

export function registerApply(program: Command): void {
  program
    .command('apply <inventory>')
    .description(
      'Apply the roles to every host of the inventory over SSH, all hosts in parallel.\n' +
        `Roles, in order: ${ROLES.map((r) => r.name).join(', ')}. Each task reports ok / changed / failed;\n` +
        'a second run changes nothing. Exits non-zero when a task failed or a host was unreachable.',
    )
    .option('--check', 'change nothing: report what would change')
    .option('--diff', 'show the differences of files (and other changes)')
    .option('--limit <hosts>', 'only these hosts or groups (comma-separated: lb01,web)')
    .option('--tags <roles>', 'only these roles (comma-separated: common,apache)')
    .option('--json', 'machine-readable results on stdout, ending with {"hosts": {NAME: {ok, changed, failed, unreachable, skipped}}}')
    .addHelpText(
      'after',
      `
Examples:
  hasetup apply inventory.yaml
  hasetup apply inventory.yaml --check --diff
  hasetup apply inventory.yaml --limit web01 --tags common
  hasetup lab exec -- hasetup apply lab/inventory.yaml   (lab hosts are reached from the lab's controller namespace)`,
    )
    .action(async (file: string, flags: ApplyFlags) => {
      const inv = await loadOrExplain(file);
      const redactor = new Redactor(secretValues(inv));
      const split = (s?: string) => (s ? s.split(',').map((x) => x.trim()).filter(Boolean) : undefined);
      let listr: ListrReporter | undefined;
      let reporter: Reporter;
      if (flags.json) reporter = new JsonReporter();
      else if (plainOutput()) reporter = new PlainReporter(!!flags.diff);
      else reporter = listr = new ListrReporter(!!flags.diff);

      // SIGINT: finish the step in progress, then stop; a second SIGINT stops at once.
      const ac = new AbortController();
      const onInt = () => {
        if (ac.signal.aborted) process.exit(130);
        process.stderr.write('\nhasetup: interrupted: finishing the current step (Ctrl-C again to quit now)\n');
        ac.abort();
      };
      process.on('SIGINT', onInt);
      let result;
      try {
        result = await run({
          inventory: inv,
          roles: ROLES,
          connect: (h) => connectHost(inv, h),
          reporter,
          redactor,
          check: !!flags.check,
          limit: split(flags.limit),
          tags: split(flags.tags),
          signal: ac.signal,
        });
      } catch (e) {
        throw new UserError((e as Error).message);
      } finally {
        process.off('SIGINT', onInt);
      }
      if (listr) await listr.finish(result);
      if (result.interrupted) process.exitCode = 130;
      else if (failedRun(result)) process.exitCode = 1;
    });
}
