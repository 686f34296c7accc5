import type { Command } from 'commander';
import { ROLES } from '../../roles/index.ts';
// The engine and the inventory loader load only when the command runs (fast --help).

interface StatusFlags {
  json?: boolean;
  watch?: boolean;
}

export function registerStatus(program: Command): void {
  program
    .command('status <inventory>')
    .description(
      "The cluster at a glance, one round trip per host: who holds the VIP; each LB's VRRP state, priority and " +
        "engine; each proxy's view of each web node (UP, DOWN, DRAIN, MAINT, sessions, queue); Apache and MariaDB; " +
        'replication and its lag; the last apply on each host; the concurrency chain (PHP-FPM children, Apache workers, ' +
        "each LB's maxconn per node, MariaDB's max_connections) from the memory and CPU the hosts have. " +
        'Exits 1 when something is wrong (it says what).',
    )
    .option('--json', 'machine-readable: {"vip": {address, holders}, "hosts": [...], "sizing": {...}, "problems": [...]}')
    .option('--watch', 'refresh every second until Ctrl-C')
    .addHelpText(
      'after',
      '\nExamples:\n  hasetup status inventory.yaml\n  hasetup status inventory.yaml --watch\n  hasetup lab exec -- hasetup status lab/inventory.yaml --json',
    )
    .action(async (file: string, flags: StatusFlags) => {
      const [{ loadOrExplain, connectHost }, { secretValues }, { Redactor }, { loadRoles }, { interestOf }, { marker }, probe, render] =
        await Promise.all([
          import('../connect.ts'),
          import('../../inventory/secrets.ts'),
          import('../engine/redact.ts'),
          import('../engine/registry.ts'),
          import('../engine/runner.ts'),
          import('../engine/shell.ts'),
          import('../status/probe.ts'),
          import('../status/render.ts'),
        ]);
      type Transport = import('../engine/transport.ts').Transport;
      type HostReport = import('../status/probe.ts').HostReport;
      const inv = await loadOrExplain(file);
      const redactor = new Redactor(secretValues(inv));
      const roles = await loadRoles(ROLES);
      const transports = new Map<string, Transport>();

      const once = async (): Promise<import('../status/render.ts').StatusReport> => {
        const hosts = await Promise.all(
          inv.hosts.map(async (h): Promise<HostReport> => {
            const down = (e: unknown): HostReport => ({
              name: h.name,
              group: h.group,
              address: h.address,
              reachable: false,
              error: (e as Error).message,
              services: {},
            });
            let t = transports.get(h.name);
            try {
              if (!t) transports.set(h.name, (t = await connectHost(inv, h)));
              const mark = marker();
              const r = await t.exec(probe.statusScript(h, interestOf(roles, h, inv).services, mark));
              return probe.parseStatus(h, inv, r.stdout, mark);
            } catch (e) {
              transports.delete(h.name);
              if (t) await t.close().catch(() => {});
              return down(e);
            }
          }),
        );
        return render.buildReport(inv, hosts);
      };
      const show = (r: Awaited<ReturnType<typeof once>>) => {
        const text = flags.json ? JSON.stringify(r, null, 2) + '\n' : render.renderTable(r);
        process.stdout.write(redactor.redact(text));
      };
      try {
        if (!flags.watch) {
          const r = await once();
          show(r);
          if (r.problems.length) process.exitCode = 1;
          return;
        }
        let stop = false;
        const onInt = () => (stop = true);
        process.on('SIGINT', onInt);
        try {
          while (!stop) {
            const t0 = Date.now();
            const r = await once();
            if (process.stdout.isTTY && !flags.json) process.stdout.write('\x1b[H\x1b[2J');
            process.stdout.write(`${new Date().toISOString().replace('T', ' ').slice(0, 19)}  (Ctrl-C to stop)\n`);
            show(r);
            await new Promise((res) => setTimeout(res, Math.max(0, 1000 - (Date.now() - t0))));
          }
        } finally {
          process.off('SIGINT', onInt);
        }
      } finally {
        await Promise.all([...transports.values()].map((t) => t.close().catch(() => {})));
      }
    });
}
