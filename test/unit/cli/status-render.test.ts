// The status view from what the hosts reported: the problems it counts (the exit status), the table's
// VIP and HTTPS lines.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildReport, renderTable } from '../../../cli/status/render.ts';
import type { HostReport } from '../../../cli/status/probe.ts';
import type { Inventory } from '../../../inventory/types.ts';
import { fixtureInventory } from '../../helpers/fixture-role.ts';

const lb = (name: string, holdsVip: boolean): HostReport => ({
  name,
  group: 'lb',
  address: '10.0.0.1',
  reachable: true,
  services: { 'hasetup-proxy': 'active', 'hasetup-vrrpd': 'active' },
  holdsVip,
  vrrp: { state: holdsVip ? 'MASTER' : 'BACKUP', priority: 150, engine: 'bundled' } as HostReport['vrrp'],
  servers: [{ server: 'web01', status: 'UP', sessions: 0, queued: 0 } as NonNullable<HostReport['servers']>[number]],
});

test('status: one VIP holder and every unit active is no problem; none, two, or a stopped unit each are', () => {
  const inv = fixtureInventory([]);
  assert.deepEqual(buildReport(inv, [lb('lb01', true), lb('lb02', false)]).problems, []);
  assert.match(buildReport(inv, [lb('lb01', false), lb('lb02', false)]).problems.join('\n'), /on no load balancer/);
  assert.match(buildReport(inv, [lb('lb01', true), lb('lb02', true)]).problems.join('\n'), /on lb01 and lb02 \(split brain\)/);
  const stopped = lb('lb02', false);
  stopped.services['hasetup-proxy'] = 'failed';
  assert.deepEqual(buildReport(inv, [lb('lb01', true), stopped]).problems, ['lb02: hasetup-proxy is failed']);
});

test('status: HTTPS, its certificate and how long it lasts; a user certificate close to its end is a problem', () => {
  const inv: Inventory = fixtureInventory([]);
  const soon = new Date(Date.now() + 5 * 86_400_000).toISOString();
  inv.roles.proxy.tls = {
    port: 443,
    redirect: true,
    certificate: '',
    pem: '',
    source: { kind: 'generated', file: '/x' },
    fingerprint: '',
    notAfter: '2029-03-06T16:26:35.000Z',
    names: ['lab'],
  };
  const r = buildReport(inv, [lb('lb01', true), lb('lb02', false)]);
  assert.deepEqual(r.problems, []);
  assert.equal(r.https?.generated, true);
  assert.match(renderTable(r), /^HTTPS :443 \(HTTP redirected\): self-signed for lab until 2029-03-06$/m);
  inv.roles.proxy.tls = {
    ...inv.roles.proxy.tls,
    redirect: false,
    notAfter: soon,
    source: { kind: 'files', certificate: '/etc/site.crt', key: '/etc/site.key' },
    names: ['www.example.org'],
  };
  const s = buildReport(inv, [lb('lb01', true), lb('lb02', false)]);
  assert.match(s.problems.join('\n'), /^HTTPS: the certificate expires in [45] days \(.*\): replace \/etc\/site\.crt$/m);
  assert.match(renderTable(s), /^HTTPS :443: certificate for www\.example\.org until /m);
  assert.match(renderTable(s), /^! HTTPS: the certificate expires/m);
  assert.equal(buildReport(fixtureInventory([]), []).https, undefined, 'no HTTPS line without roles.proxy.tls');
});

test('status: two VRRP masters are a split brain, said even while the VIP shows on one of them only', () => {
  const inv = fixtureInventory([]);
  const cut = lb('lb02', false);
  cut.vrrp!.state = 'MASTER';
  const r = buildReport(inv, [lb('lb01', true), cut]);
  assert.deepEqual(r.problems, [
    "split brain: lb01 and lb02 are each VRRP MASTER (neither hears the other's adverts: VRRP between the LBs is blocked or lost)",
  ]);
  assert.match(renderTable(r), /^! split brain: lb01 and lb02 are each VRRP MASTER/m);
  const both = buildReport(inv, [lb('lb01', true), lb('lb02', true)]).problems;
  assert.equal(both.length, 2, both.join('\n'));
});

test("status: the concurrency chain from the hosts' memory and CPUs (cgroup limits), in the table and the JSON", () => {
  const inv = fixtureInventory([
    { name: 'web01', address: '10.0.0.21' },
    { name: 'web02', address: '10.0.0.22' },
  ]);
  inv.hosts.push(...['lb01', 'lb02'].map((n) => ({ ...inv.hosts[0], name: n, group: 'lb' as const })));
  const res = (memoryMb: number, cpuCores: number) => ({ memoryMb, cpus: 2, cpuCores, limits: { memoryMb, cpus: cpuCores } });
  const web = (name: string): HostReport => ({
    name,
    group: 'web',
    address: '10.0.0.21',
    reachable: true,
    services: {},
    resources: res(512, 0.5),
  });
  const lbs = [lb('lb01', true), lb('lb02', false)].map((h) => ({ ...h, resources: res(512, 1) }));
  const r = buildReport(inv, [...lbs, web('web01'), web('web02')]);
  assert.deepEqual(r.sizing?.webs[0], { name: 'web01', memoryMb: 512, cpuCores: 0.5, maxChildren: 3, maxRequestWorkers: 50, maxconn: 3 });
  assert.deepEqual(r.sizing?.lbs[0], { name: 'lb01', memoryMb: 512, frontendMaxconn: 4096 });
  assert.deepEqual(r.sizing?.mysql, { maxConnections: 151, required: 16, fixed: false });
  assert.equal(r.sizing?.queueTimeoutMs, 5000);
  const table = renderTable(r);
  assert.match(
    table,
    /^concurrency \(requests at once, from what the hosts have\):\n {2}web01 \(512 MB, 0\.5 CPU\): PHP-FPM pm\.max_children 3/m,
  );
  assert.match(table, /^ {2}MariaDB max_connections 151 \(auto, at least 151\)/m);
  assert.equal(JSON.parse(JSON.stringify(r)).sizing.webs.length, 2);
  // a web node that did not answer: its line is missing, and so is the database's
  const partial = buildReport(inv, [...lbs, web('web01'), { ...web('web02'), reachable: false, resources: undefined }]);
  assert.equal(partial.sizing?.webs.length, 1);
  assert.equal(partial.sizing?.mysql, null);
});
