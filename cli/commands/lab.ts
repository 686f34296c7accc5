import type { Command } from 'commander';
import { UserError } from '../errors.ts';
import { defaultInventoryPath, MAX_WEBS } from '../lab/config.ts';
import { ctlInteractive, labConfig, LabError, labDown, labSshInteractive, labStatus, labUp } from '../lab/lab.ts';
import { DEFAULT_LIMITS, formatCpu, formatLimits, formatMemory, parseCpu, parseMemory, type HostLimits } from '../lab/limits.ts';
import type { Group } from '../../inventory/types.ts';

const LAB_HELP = `
The lab is the cluster's hosts as systemd containers on this Linux machine (root needed):
  lb01 10.213.0.11, lb02 10.213.0.12, web01 10.213.0.21, web02 10.213.0.22, db01 10.213.0.31
  (and db02 10.213.0.32 with --with-replica), on a private bridge with no link to this machine's
  network. Each host is limited as a small VPS is (cgroup CPU quota and memory limit): by default
  lb ${formatLimits(DEFAULT_LIMITS.lb)}, web ${formatLimits(DEFAULT_LIMITS.web)}, db ${formatLimits(DEFAULT_LIMITS.db)}
  (--web-cpu 0.5 --web-memory 512M and the same for lb and db; max for none). The VIP 10.213.0.100 is left to the cluster. The controller's side of the lab is the
  network namespace "ctl" (10.213.0.10): commands that talk to lab hosts run there, through
  \`hasetup lab exec\`:

  hasetup lab up                                         # writes lab/inventory.yaml
  hasetup lab exec -- node bin/hasetup.js apply lab/inventory.yaml
  hasetup lab ssh web01 -- systemctl is-system-running
  hasetup lab down

Hosts install packages offline from a local apt repository (deb [trusted=yes] file:/srv/repo ./).
The base image and the repository are built once into ~/.cache/hasetup/lab (HASETUP_LAB_CACHE);
the lab's key, known_hosts and the hosts' overlays live in ~/.local/state/hasetup/lab/<name>
(HASETUP_LAB_STATE).
HASETUP_LAB_NAME (default "lab") names a lab, so that several can run side by side.`;

interface VagrantModule {
  vagrantUp(opts: { inventoryOut: string }): Promise<void>;
  vagrantDown(): Promise<void>;
  vagrantStatus(): Promise<void>;
}

async function vagrantModule(): Promise<VagrantModule> {
  return import('../lab/vagrant.ts');
}

/** `lab NAME [--provider nspawn|vagrant]`: the Vagrant lab's action, or the containers'. */
function withProvider(
  lab: Command,
  name: string,
  description: string,
  vagrant: (v: VagrantModule) => Promise<void>,
  nspawn: () => Promise<void>,
): void {
  lab
    .command(name)
    .description(description)
    .option('--provider <provider>', 'nspawn (default) or vagrant', 'nspawn')
    .action(async (opts: { provider: string }) => {
      if (provider(opts.provider) === 'vagrant') return vagrant(await vagrantModule());
      await nspawn();
    });
}

function provider(value: string): 'nspawn' | 'vagrant' {
  if (value !== 'nspawn' && value !== 'vagrant') throw new UserError(`--provider must be nspawn or vagrant, not "${value}"`, 2);
  return value;
}

type LimitFlags = Partial<Record<`${Group}Cpu` | `${Group}Memory`, string>>;

/** The limits the flags set, per group (only the ones given). */
function limitsOf(opts: LimitFlags): Partial<Record<Group, Partial<HostLimits>>> {
  const out: Partial<Record<Group, Partial<HostLimits>>> = {};
  for (const g of ['lb', 'web', 'db'] as const) {
    const cpu = opts[`${g}Cpu`];
    const memory = opts[`${g}Memory`];
    if (cpu !== undefined) (out[g] ??= {}).cpu = parseCpu(cpu, `--${g}-cpu`);
    if (memory !== undefined) (out[g] ??= {}).memory = parseMemory(memory, `--${g}-memory`);
  }
  return out;
}

/** Runs a lab action; lab errors are the user's to read, without a stack trace. */
async function guard<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof LabError) throw new UserError(err.message, err.exitCode);
    throw err;
  }
}

export function registerLab(program: Command): void {
  const lab = program
    .command('lab')
    .description("The lab: the cluster's hosts as systemd containers on this Linux machine (up, down, status, ssh, exec)")
    .addHelpText('after', LAB_HELP);

  const up = lab
    .command('up')
    .description('Build (once, cached) the base image and local apt repository, boot the hosts, write the inventory')
    .option(
      '--inventory <path>',
      'where to write the lab inventory (default: lab/inventory.yaml in the checkout; for a lab named otherwise, inventory.yaml in its state directory)',
    )
    .option('--with-replica', 'add a sixth host, db02 (10.213.0.32), a MySQL replica')
    .option('--web-nodes <n>', 'web nodes web01..web0N at 10.213.0.21..2N (1 to 9, default 2); a running lab gets the missing ones', (v) =>
      Number(v),
    )
    .option('--runtime <engine>', 'the engine the written inventory names: bundled (the default) or haproxy');
  for (const g of ['lb', 'web', 'db'] as const) {
    up.option(
      `--${g}-cpu <cores>`,
      `CPU limit of each ${g} host in cores, or max (default ${DEFAULT_LIMITS[g].cpu}); a running lab's change at once`,
    );
    up.option(
      `--${g}-memory <size>`,
      `memory limit of each ${g} host: 512M, 1G, or max (default ${formatMemory(DEFAULT_LIMITS[g].memory)})`,
    );
  }
  up.option('--provider <provider>', 'nspawn (systemd containers, default) or vagrant (VMs from the Vagrantfile)', 'nspawn').action(
    async (opts: { inventory?: string; withReplica?: boolean; webNodes?: number; runtime?: string; provider: string } & LimitFlags) => {
      if (opts.runtime !== undefined && opts.runtime !== 'bundled' && opts.runtime !== 'haproxy')
        throw new UserError(`--runtime must be bundled or haproxy, not "${opts.runtime}"`, 2);
      const runtime = opts.runtime as 'bundled' | 'haproxy' | undefined;
      if (opts.webNodes !== undefined && !(Number.isInteger(opts.webNodes) && opts.webNodes >= 1 && opts.webNodes <= MAX_WEBS))
        throw new UserError(`--web-nodes must be a whole number from 1 to ${MAX_WEBS}`, 2);
      if (provider(opts.provider) === 'vagrant') {
        if (opts.withReplica || opts.webNodes !== undefined || Object.keys(limitsOf(opts)).length)
          throw new UserError('--with-replica, --web-nodes and the limits are for the nspawn lab only', 2);
        await (await vagrantModule()).vagrantUp({ inventoryOut: opts.inventory ?? defaultInventoryPath() });
        return;
      }
      const limits = await guard(async () => limitsOf(opts));
      await guard(() =>
        labUp(labConfig(), {
          inventory: opts.inventory,
          replica: !!opts.withReplica,
          webs: opts.webNodes,
          runtime,
          limits: Object.keys(limits).length ? limits : undefined,
        }),
      );
    },
  );

  withProvider(
    lab,
    'down',
    'Stop the hosts and remove every namespace, veth, bridge, cgroup, process and overlay the lab created',
    (v) => v.vagrantDown(),
    async () => {
      await guard(() => labDown(labConfig()));
    },
  );

  withProvider(
    lab,
    'status',
    'Show each host, its address, whether it runs and whether sshd answers (exit 1 if the lab is not fully up)',
    (v) => v.vagrantStatus(),
    async () => {
      const cfg = await guard(async () => labConfig());
      const st = await guard(() => labStatus(cfg));
      if (!st.recorded) {
        console.log(`lab "${cfg.name}" is down`);
        process.exitCode = 1;
        return;
      }
      console.log(`lab "${cfg.name}": ${st.up ? 'up' : 'NOT fully up'}; inventory ${st.inventory || '(not written)'}`);
      if (st.limits) console.log(`limits: ${(['lb', 'web', 'db'] as const).map((g) => `${g} ${formatLimits(st.limits![g])}`).join('; ')}`);
      console.log(['HOST'.padEnd(7), 'ADDRESS'.padEnd(12), 'RUNNING'.padEnd(8), 'SSHD'.padEnd(8), 'MEMORY'.padEnd(11), 'LIMITS'].join(' '));
      for (const h of st.hosts) {
        console.log(
          [
            h.name.padEnd(7),
            h.address.padEnd(12),
            (h.running ? 'yes' : 'no').padEnd(8),
            (h.ssh ? 'answers' : 'silent').padEnd(8),
            `${(h.memoryBytes / 1048576).toFixed(1)} MiB`.padEnd(11),
            `${h.limits.cpu === undefined ? '?' : formatCpu(h.limits.cpu)}, ${h.limits.memory === undefined ? '?' : formatMemory(h.limits.memory)}`,
          ].join(' '),
        );
      }
      if (!st.up) process.exitCode = 1;
    },
  );

  lab
    .command('ssh')
    .description('Log in to a lab host as root (from ctl), or run one command there: hasetup lab ssh web01 -- uname -a')
    .argument('<host>', 'lb01, lb02, web01, web02, db01 (db02 with the replica)')
    .argument('[command...]', 'the command, after --')
    .action(async (host: string, command: string[]) => {
      process.exitCode = await guard(() => labSshInteractive(labConfig(), host, command));
    });

  lab
    .command('exec')
    .description('Run a command in the lab\'s controller namespace "ctl" (10.213.0.10), where lab hosts are reachable')
    .argument('<command...>', 'the command, after --: hasetup lab exec -- node bin/hasetup.js apply lab/inventory.yaml')
    .action(async (command: string[]) => {
      process.exitCode = await guard(() => ctlInteractive(labConfig(), command));
    });
}
