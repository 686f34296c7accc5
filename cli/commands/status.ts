import type { Command } from 'commander';
import type { Host, Inventory } from '../../inventory/types.ts';
import type { Role } from '../engine/role.ts';
import { ROLES } from '../../roles/index.ts';
// The engine and the inventory loader load only when the command runs (fast --help).

interface HostStatus {
  name: string;
  group: string;
  address: string;
  reachable: boolean;
  error?: string;
  os?: string;
  services?: Record<string, string>;
  holdsVip?: boolean;
  vrrp?: unknown;
}

async function hostStatus(inv: Inventory, h: Host, roles: Role[]): Promise<HostStatus> {
  const [{ connectHost }, { gatherFacts }, { marker }, { interestOf }] = await Promise.all([
    import('../connect.ts'),
    import('../engine/facts.ts'),
    import('../engine/shell.ts'),
    import('../engine/runner.ts'),
  ]);
  // the services the host's roles run (roles/index.ts)
  const interest = interestOf(roles, h, inv);
  const base = { name: h.name, group: h.group, address: h.address };
  let t;
  try {
    t = await connectHost(inv, h);
  } catch (e) {
    return { ...base, reachable: false, error: (e as Error).message };
  }
  try {
    const facts = await gatherFacts(t, marker(), interest);
    const services: Record<string, string> = {};
    for (const u of interest.services) {
      const s = facts.services[u];
      if (s && s.enabled !== 'not-found') services[u] = s.active;
    }
    // The firewall is a loaded nftables table (nftables.service only loads it at boot).
    const fw = await t.exec('nft list table inet hasetup 2>/dev/null | grep -o "hasetup:[0-9a-f]*" | head -n1');
    services.firewall = fw.stdout.trim() ? 'loaded' : 'none';
    const st: HostStatus = { ...base, reachable: true, os: facts.os.prettyName, services };
    if (h.group === 'lb') {
      st.holdsVip = facts.interfaces.some((i) => i.addresses.some((a) => a.split('/')[0] === inv.vip.address));
      const r = await t.exec('cat /run/hasetup-vrrpd/status.json 2>/dev/null');
      if (r.code === 0 && r.stdout.trim()) {
        try {
          st.vrrp = JSON.parse(r.stdout);
        } catch {}
      }
    }
    return st;
  } finally {
    await t.close();
  }
}

export function registerStatus(program: Command): void {
  program
    .command('status <inventory>')
    .description('Show each host of the cluster: reachable or not, its services, and which LB holds the VIP')
    .option('--json', 'machine-readable output')
    .addHelpText('after', '\nExample:\n  hasetup status inventory.yaml\n  hasetup lab exec -- hasetup status lab/inventory.yaml')
    .action(async (file: string, flags: { json?: boolean }) => {
      const [{ loadOrExplain }, { secretValues }, { Redactor }, { loadRoles }] = await Promise.all([
        import('../connect.ts'),
        import('../../inventory/secrets.ts'),
        import('../engine/redact.ts'),
        import('../engine/registry.ts'),
      ]);
      const roles = await loadRoles(ROLES);
      const inv = await loadOrExplain(file);
      const redactor = new Redactor(secretValues(inv));
      const all = await Promise.all(inv.hosts.map((h) => hostStatus(inv, h, roles)));
      if (flags.json) {
        process.stdout.write(redactor.redact(JSON.stringify({ vip: `${inv.vip.address}/${inv.vip.prefix}`, hosts: all }, null, 2)) + '\n');
      } else {
        const w = Math.max(...all.map((s) => s.name.length));
        for (const s of all) {
          const head = `${s.name.padEnd(w)}  ${s.group.padEnd(3)}  ${s.address.padEnd(15)}`;
          if (!s.reachable) {
            process.stdout.write(`${head}  UNREACHABLE  ${redactor.redact(s.error ?? '')}\n`);
            continue;
          }
          const svc = Object.entries(s.services ?? {}).map(([u, a]) => `${u}=${a}`).join(' ');
          const vip = s.holdsVip ? `  holds VIP ${inv.vip.address}` : '';
          process.stdout.write(`${head}  up  ${svc || '(no cluster services yet)'}${vip}\n`);
        }
        const holders = all.filter((s) => s.holdsVip).map((s) => s.name);
        process.stdout.write(
          holders.length === 1 ? `VIP ${inv.vip.address}: on ${holders[0]}\n` : holders.length === 0 ? `VIP ${inv.vip.address}: on no load balancer\n` : `VIP ${inv.vip.address}: on ${holders.join(' and ')} (split brain)\n`,
        );
      }
      if (all.some((s) => !s.reachable)) process.exitCode = 1;
    });
}
