// A role for engine tests: files, a directory, a guarded command and a handler, all inside one
// folder of the test's own, so that it can run against this machine (local transport, or sshd in a
// namespace) without touching anything else.
import type { Role } from '../../cli/engine/role.ts';
import type { Inventory, Host } from '../../inventory/types.ts';
import { file, directory, command } from '../../cli/engine/ops.ts';

export function fixtureRole(root: string, opts: { content?: string; secret?: string; slowMs?: number } = {}): Role {
  return {
    name: 'fixture',
    description: 'test role writing under one folder',
    appliesTo: () => true,
    tasks: (ctx) => [
      { name: 'folder', op: directory({ path: `${root}/${ctx.host.name}`, mode: '0750' }) },
      {
        name: 'config file',
        op: file({
          path: `${root}/${ctx.host.name}/app.conf`,
          content: opts.content ?? `name=${ctx.host.name}\npassword=${opts.secret ?? 'none'}\n`,
          mode: '0640',
        }),
        notify: ['restart app'],
      },
      {
        name: 'slow marker',
        op: command({
          script: `sleep ${(opts.slowMs ?? 0) / 1000}; touch ${root}/${ctx.host.name}/marker`,
          creates: `${root}/${ctx.host.name}/marker`,
        }),
      },
    ],
    handlers: (ctx) => [{ name: 'restart app', script: `echo restarted >> ${root}/${ctx.host.name}/restarts` }],
  };
}

export function fixtureInventory(hosts: { name: string; address: string; port?: number }[], extra: Partial<Inventory> = {}): Inventory {
  const hs: Host[] = hosts.map((h) => ({
    name: h.name,
    address: h.address,
    group: 'web',
    ssh: { host: h.address, user: 'root', port: h.port ?? 22, become: false, connectTimeout: 3 },
  }));
  return {
    file: '/nonexistent/inventory.yaml',
    cluster: 'test',
    vip: { address: '10.0.0.100', prefix: 24, interface: 'eth0' },
    vrrp: { routerId: 51, advertInt: 1, version: 2, unicast: false },
    runtime: 'bundled',
    hosts: hs,
    roles: {
      proxy: {
        balance: 'roundrobin',
        port: 80,
        maxconn: 4096,
        monitorPort: 8405,
        healthCheck: { path: '/health', inter: 500, fastinter: 250, timeout: 300, rise: 2, fall: 2 },
        timeouts: { connect: 5000, client: 50000, server: 50000, queue: 5000 },
        stats: { uri: '/haproxy?stats', port: 80, user: 'admin' },
        persistence: 'cookie',
      },
      apache: { workers: 'auto' },
      app: { php: { maxChildren: 'auto' }, keepReleases: 3 },
      mysql: { appDatabase: 'app', appUser: 'app', maxConnections: 'auto', binlogFormat: 'MIXED' },
      firewall: { adminCidrs: ['127.0.0.1/32'] },
    },
    failoverTest: {
      rate: 200,
      sloMs: 500,
      capacity: {
        stepSeconds: 4,
        refineSteps: 2,
        floodFactors: [2, 4],
        floodSeconds: 15,
        recoverySeconds: 8,
        oneNode: true,
        singleBox: true,
        connections: 4096,
      },
      thresholds: {
        webFailedRequests: 0,
        lbHardTakeoverMs: 1000,
        lbGracefulTakeoverMs: 300,
        spikeErrors: 0,
        floodResets: 0,
        floodTimeouts: 0,
        flood502: 0,
        floodEarly503: 0,
        tooManyConnections: 0,
        floodServedRatio: 0.8,
        recoveryMs: 5000,
        scaleRatio: 1.8,
      },
    },
    secrets: {
      file: '/nonexistent/inventory.secrets.yaml',
      mysqlRootPassword: 'rootpw-abcdef123',
      mysqlAppPassword: 'apppw-abcdef123',
      mysqlReplicationPassword: 'replpw-abcdef123',
      vrrpAuthPass: 'vrrp1234',
      statsPassword: 'statspw-abcdef123',
    },
    ...extra,
  };
}

/** The seed's cluster on 10.0.0.x (two LBs, priorities 150 and 100, two web nodes, a database), its VIP on `vipInterface`. */
export function seedCluster(over: Partial<Inventory> = {}, vipInterface = 'eth0'): Inventory {
  const inv = fixtureInventory([], over);
  const h = (name: string, address: string, group: Host['group'], priority?: number): Host => ({
    name,
    address,
    group,
    ssh: { host: address, user: 'root', port: 22, become: false, connectTimeout: 5 },
    ...(priority ? { priority } : {}),
  });
  inv.hosts = [
    h('lb01', '10.0.0.11', 'lb', 150),
    h('lb02', '10.0.0.12', 'lb', 100),
    h('web01', '10.0.0.21', 'web'),
    h('web02', '10.0.0.22', 'web'),
    h('db01', '10.0.0.31', 'db'),
  ];
  inv.vip = { address: '10.0.0.100', prefix: 24, interface: vipInterface };
  return inv;
}
