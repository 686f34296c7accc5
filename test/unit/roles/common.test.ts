// Role common: what it renders and does per host: the host name, /etc/hosts naming every host of the
// cluster, time sync outside containers, the LBs' kernel settings, the file-descriptor limits.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import common from '../../../roles/common/index.ts';
import { roleContext } from '../../../cli/engine/role.ts';
import type { Facts } from '../../../cli/engine/facts.ts';
import type { Host } from '../../../inventory/types.ts';
import { fixtureInventory } from '../../helpers/fixture-role.ts';

const inv = fixtureInventory([]);
const h = (name: string, address: string, group: Host['group']): Host => ({
  name,
  address,
  group,
  ssh: { host: address, user: 'root', port: 22, become: false, connectTimeout: 5 },
});
inv.hosts = [h('lb01', '10.0.0.11', 'lb'), h('lb02', '10.0.0.12', 'lb'), h('web01', '10.0.0.21', 'web'), h('db01', '10.0.0.31', 'db')];
const facts = (container: boolean) => ({ hostname: 'x', container, memoryMb: 1024, records: {} }) as unknown as Facts;
const tasksOf = (host: string, container = false) =>
  common.tasks(
    roleContext(
      common,
      inv.hosts.find((x) => x.name === host)!,
      inv,
      facts(container),
    ),
  );
const content = (host: string, task: string) => {
  const t = tasksOf(host).find((x) => x.name === task)!;
  const p = t.op.plan('absent', { facts: facts(false), earlierChange: false });
  return p.changed ? String(p.stdin) : '';
};

test('common: the host name, and /etc/hosts naming every host of the cluster', () => {
  assert.equal(content('web01', 'hostname file'), 'web01\n');
  const hosts = content('web01', '/etc/hosts');
  for (const x of inv.hosts) assert.match(hosts, new RegExp(`^${x.address.replace(/\./g, '\\.')}\\s+${x.name}\\b`, 'm'));
  assert.match(hosts, /^127\.0\.0\.1\s+localhost/m);
});

test('common: chrony except in a container; the LBs alone get the VIP-binding and accept-queue sysctls', () => {
  assert.ok(tasksOf('web01', false).some((t) => t.name === 'time sync (chrony)'));
  assert.ok(!tasksOf('web01', true).some((t) => t.name === 'time sync (chrony)'));
  const sysctls = (host: string) =>
    tasksOf(host)
      .filter((t) => t.op.kind === 'sysctl')
      .map((t) => t.op.subject);
  assert.deepEqual(sysctls('lb01'), ['net.ipv4.ip_nonlocal_bind=1', 'net.core.somaxconn=4096', 'net.ipv4.tcp_max_syn_backlog=4096']);
  assert.deepEqual(sysctls('db01'), []);
});

test("common: file-descriptor limits for logins and services; a change to the services' limit re-executes systemd", () => {
  assert.match(content('db01', 'nofile limit (login sessions)'), /\bnofile\s+65536\b/);
  assert.match(content('db01', 'nofile limit (services)'), /^DefaultLimitNOFILE=65536$/m);
  assert.deepEqual(tasksOf('db01').find((t) => t.name === 'nofile limit (services)')!.notify, ['reexec systemd']);
  assert.deepEqual(common.handlers?.(roleContext(common, inv.hosts[0], inv, facts(false))), [
    { name: 'reexec systemd', script: 'systemctl daemon-reexec' },
  ]);
});
