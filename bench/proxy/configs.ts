// The two haproxy.cfg files the proxy benchmarks run (latency.ts, profile.ts): the proxy role's own, rendered for the
// lab's first LB and moved to loopback, and a bare listen section.
import { spawnSync } from 'node:child_process';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import proxyRole from '../../roles/proxy/index.ts';
import { roleContext } from '../../cli/engine/role.ts';
import { loadInventory } from '../../inventory/load.ts';
import type { Facts } from '../../cli/engine/facts.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * The role's haproxy.cfg for the lab's first LB, on loopback: the service on `port`, both servers on `backend`, the
 * stats socket in `dir`, `global` lines added to the global section.
 */
export async function roleConfig(dir: string, port: number, backend: number, global: string): Promise<string> {
  const facts = { hostname: 'lb01', arch: 'x86_64', memoryMb: 2048, container: true, records: {} } as unknown as Facts;
  const inv = await loadInventory(join(root, 'inventory', 'examples', 'lab.yaml'));
  const peers = new Map(inv.hosts.map((h) => [h.name, facts]));
  const task = proxyRole.tasks(roleContext(proxyRole, inv.hosts[0], inv, facts, peers)).find((x) => x.name === 'haproxy.cfg')!;
  const plan = task.op.plan('absent', { facts, earlierChange: false });
  if (!plan.changed || !plan.stdin) throw new Error('the proxy role rendered no haproxy.cfg');
  let cfg = plan.stdin.toString();
  const subst = (re: RegExp, to: string) => {
    if (!re.test(cfg)) throw new Error(`the role's haproxy.cfg has no line matching ${re}`);
    cfg = cfg.replace(re, to);
  };
  subst(/^ {4}bind :80$/m, `    bind 127.0.0.1:${port}`);
  subst(/^( {4}server \S+) [\d.]+:80 /gm, `$1 127.0.0.1:${backend} `);
  subst(/^ {4}stats socket \S+/m, `    stats socket ${join(dir, `admin-${port}.sock`)}`);
  // the process starts as root here: the role's user/group are kept when this machine has them (the haproxy package)
  if (spawnSync('id', ['haproxy']).status !== 0) cfg = cfg.replace(/^ {4}(user|group) haproxy\n/gm, '');
  return cfg.replace(/^global\n/m, `global\n${global}`);
}

/** A listen section and nothing else: no log, no checks, one server. */
export function bareConfig(port: number, backend: number, global: string): string {
  return `global\n    maxconn 4096\n${global}defaults\n    mode http\n    timeout connect 5s\n    timeout client 60s\n    timeout server 60s\n    option http-keep-alive\nlisten bench\n    bind 127.0.0.1:${port}\n    server b1 127.0.0.1:${backend}\n`;
}
