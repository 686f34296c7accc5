// The wizard's validators: each refuses what the inventory loader refuses, with the loader's own
// message, and the checks across answers (unique names and addresses, the VIP's place).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkInventoryText } from '../../../inventory/load.ts';
import { renderInventoryYaml } from '../../../inventory/render.ts';
import type { InventoryFile } from '../../../inventory/schema.ts';
import * as V from '../../../cli/init/validate.ts';
import type { NamedHost } from '../../../cli/init/validate.ts';

const base = (): InventoryFile => ({
  cluster: 'lab',
  vip: { address: '10.0.0.100/24', interface: 'eth0' },
  ssh: { user: 'root', port: 22 },
  hosts: {
    lb: [
      { name: 'lb01', address: '10.0.0.11' },
      { name: 'lb02', address: '10.0.0.12' },
    ],
    web: [{ name: 'web01', address: '10.0.0.21' }],
    db: [{ name: 'db01', address: '10.0.0.31' }],
  },
  roles: { firewall: { admin_cidrs: ['10.0.0.5/32'] } },
});

/** The loader's message for the inventory with one field changed (the first error at that field). */
function loaderSays(edit: (m: InventoryFile) => void, field: string): string {
  const m = base();
  edit(m);
  const r = checkInventoryText(renderInventoryYaml(m), 'x.yaml');
  assert.equal(r.ok, false, 'the loader refuses it too');
  const e = !r.ok && r.errors.find((x) => x.path === field);
  assert.ok(e, `the loader reports ${field}`);
  return e.message.replace(/, got .*$/, '');
}

test('the base inventory of these tests is valid', () => {
  assert.equal(checkInventoryText(renderInventoryYaml(base()), 'x.yaml').ok, true);
});

test("cluster name: refused with the loader's message", () => {
  assert.equal(V.validCluster('web-farm2'), true);
  for (const bad of ['Web', '-x', 'a_b', 'x'.repeat(64), '']) {
    const v = V.validCluster(bad);
    assert.equal(
      v,
      loaderSays((m) => (m.cluster = bad), 'cluster'),
      bad,
    );
  }
});

test("interface, SSH user, port and connect timeout: the loader's messages", () => {
  assert.equal(V.validInterface('ens3'), true);
  assert.equal(V.validInterface('eth0.100'), true);
  assert.equal(
    V.validInterface('a-very-long-interface'),
    loaderSays((m) => (m.vip.interface = 'a-very-long-interface'), 'vip.interface'),
  );
  assert.equal(V.validSshUser('debian'), true);
  assert.equal(
    V.validSshUser('Bad User'),
    loaderSays((m) => (m.ssh!.user = 'Bad User'), 'ssh.user'),
  );
  assert.equal(V.validSshPort('2222'), true);
  for (const bad of ['0', '65536', 'ssh', '22.5', '']) assert.equal(V.validSshPort(bad), 'expected an integer from 1 to 65535', bad);
  assert.equal(
    V.validSshPort('70000'),
    loaderSays((m) => (m.ssh!.port = 70000), 'ssh.port'),
  );
  assert.equal(V.validConnectTimeout('10'), true);
  assert.equal(V.validConnectTimeout('601'), 'expected an integer from 1 to 600 seconds');
});

test('number of web nodes: 1 to 99', () => {
  assert.equal(V.validWebNodes('1'), true);
  assert.equal(V.validWebNodes('99'), true);
  for (const bad of ['0', '100', 'two', '-1', '1.5']) assert.equal(V.validWebNodes(bad), 'expected an integer from 1 to 99', bad);
});

const others: NamedHost[] = [
  { label: 'load balancer 1', name: 'lb01', address: '10.0.0.11' },
  { label: 'load balancer 2', name: 'lb02', address: '10.0.0.12' },
];

test("host name: the loader's rule, and unique in the cluster", () => {
  assert.equal(V.validHostName('web01', others), true);
  assert.equal(
    V.validHostName('Web_01', others),
    loaderSays((m) => (m.hosts.web![0].name = 'Web_01'), 'hosts.web[0].name'),
  );
  assert.equal(V.validHostName('lb02', others), '"lb02" is already the name of load balancer 2: host names are unique in the cluster');
});

test("address: an IPv4 address with the loader's message, unique, not the VIP, not loopback or multicast", async () => {
  assert.deepEqual(await V.checkAddress('10.0.0.21', others), { ok: true, address: '10.0.0.21' });
  const bad = await V.checkAddress('10.0.0.300', others);
  assert.deepEqual(bad, { ok: false, message: loaderSays((m) => (m.hosts.web![0].address = '10.0.0.300'), 'hosts.web[0].address') });
  assert.deepEqual(await V.checkAddress('10.0.0.12', others), {
    ok: false,
    message: '10.0.0.12 is already the address of load balancer 2 (lb02): addresses are unique in the cluster',
  });
  assert.deepEqual(await V.checkAddress('10.0.0.100', others, { vip: '10.0.0.100/24' }), {
    ok: false,
    message: '10.0.0.100 is the VIP: a host needs an address of its own',
  });
  assert.deepEqual(await V.checkAddress('127.0.0.1', others), {
    ok: false,
    message: '127.0.0.1 is a loopback address: give the address the other hosts reach this one on',
  });
  assert.match(JSON.stringify(await V.checkAddress('224.0.0.18', others)), /not a host's unicast address/);
  assert.match(JSON.stringify(await V.checkAddress('0.1.2.3', others)), /not a host's unicast address/);
});

test('address: a host name is resolved (never digits and dots); the name is what SSH connects to', async () => {
  const asked: string[] = [];
  const resolve = async (n: string) => {
    asked.push(n);
    if (n === 'web01.example.test') return '10.0.0.21';
    if (n === 'lb-again.example.test') return '10.0.0.11';
    throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' });
  };
  assert.deepEqual(await V.checkAddress('web01.example.test', others, { resolve }), {
    ok: true,
    address: '10.0.0.21',
    sshHost: 'web01.example.test',
  });
  assert.deepEqual(await V.checkAddress('nowhere.example.test', others, { resolve }), {
    ok: false,
    message: 'cannot resolve nowhere.example.test (ENOTFOUND): give its IPv4 address, or a name this machine resolves',
  });
  assert.match(
    JSON.stringify(await V.checkAddress('lb-again.example.test', others, { resolve })),
    /already the address of load balancer 1/,
  );
  assert.match(
    JSON.stringify(await V.checkAddress('bad name!', others, { resolve })),
    /expected an IPv4 address like 10\.0\.0\.1 \(no \/prefix\), or a host name that resolves to one/,
  );
  await V.checkAddress('10.0.0.300', others, { resolve });
  await V.checkAddress('10.0.0', others, { resolve });
  assert.deepEqual(
    asked,
    ['web01.example.test', 'nowhere.example.test', 'lb-again.example.test'],
    'digits and dots never reach the resolver',
  );
});

test("VIP: the loader's format message, then in the LBs' subnet, no host's, not network or broadcast", () => {
  const lbs = others;
  const hosts = [...others, { label: 'web node 1', name: 'web01', address: '10.0.0.21' }];
  assert.equal(V.validVip('10.0.0.100/24', lbs, hosts), true);
  assert.equal(
    V.validVip('10.0.0.100', lbs, hosts),
    loaderSays((m) => (m.vip.address = '10.0.0.100'), 'vip.address'),
  );
  assert.equal(
    V.validVip('10.0.1.100/24', lbs, hosts),
    "10.0.1.100/24 is outside the subnet of load balancer lb01 (10.0.0.11): the VIP must be in the load balancers' subnet",
  );
  assert.equal(V.validVip('10.0.0.21/24', lbs, hosts), '10.0.0.21 is also the address of web01: the VIP must be an unused address');
  assert.equal(V.validVip('10.0.0.0/24', lbs, hosts), '10.0.0.0 is the network address of its /24 subnet, not usable as the VIP');
  assert.equal(V.validVip('10.0.0.255/24', lbs, hosts), '10.0.0.255 is the broadcast address of its /24 subnet, not usable as the VIP');
  // what the validator lets through, the loader accepts
  const m = base();
  m.vip.address = '10.0.0.200/24';
  assert.equal(checkInventoryText(renderInventoryYaml(m), 'x.yaml').ok, true);
  // and what it refuses across answers, the loader refuses too
  for (const v of ['10.0.1.100/24', '10.0.0.21/24', '10.0.0.0/24', '10.0.0.255/24']) loaderSays((x) => (x.vip.address = v), 'vip.address');
});

test("admin networks: each a CIDR or an address (the loader's message), at least one", () => {
  assert.deepEqual(V.splitList('10.0.0.5/32, 192.168.1.0/24 10.1.1.1'), ['10.0.0.5/32', '192.168.1.0/24', '10.1.1.1']);
  assert.equal(V.validAdminCidrs(['10.0.0.5/32', '10.1.1.1']), true);
  assert.equal(
    V.validAdminCidrs(['10.0.0.5/33']),
    `10.0.0.5/33: ${loaderSays((m) => (m.roles.firewall.admin_cidrs = ['10.0.0.5/33']), 'roles.firewall.admin_cidrs[0]')}`,
  );
  assert.equal(
    V.validAdminCidrs([]),
    loaderSays((m) => (m.roles.firewall.admin_cidrs = []), 'roles.firewall.admin_cidrs'),
  );
  assert.equal(V.cidrsContain(['10.0.0.0/24'], '10.0.0.5'), true);
  assert.equal(V.cidrsContain(['10.0.0.5'], '10.0.0.5'), true);
  assert.equal(V.cidrsContain(['10.0.1.0/24', '10.0.0.6/32'], '10.0.0.5'), false);
});

test('a free VIP: .100 first, never a taken address, the network or the broadcast address', () => {
  assert.equal(V.suggestVip('10.0.0.11', 24, ['10.0.0.11', '10.0.0.12']), '10.0.0.100/24');
  assert.equal(V.suggestVip('10.0.0.11', 24, ['10.0.0.100']), '10.0.0.200/24');
  assert.equal(V.suggestVip('10.0.0.11', 24, ['10.0.0.100', '10.0.0.200', '10.0.0.250', '10.0.0.10']), '10.0.0.254/24');
  assert.equal(V.suggestVip('10.0.0.130', 25, []), '10.0.0.228/25', 'offset 100 in 10.0.0.128/25');
  assert.equal(V.suggestVip('10.0.0.5', 29, []), '10.0.0.6/29', 'a /29 has no offset 100: the top host address');
  assert.equal(V.suggestVip('10.0.0.1', 30, ['10.0.0.1', '10.0.0.2']), null, 'a full /30');
  assert.equal(V.suggestVip('10.0.0.1', 32, []), null);
});

test('the next address, as a default for the next host of a group', () => {
  assert.equal(V.nextAddress('10.0.0.11', ['10.0.0.11']), '10.0.0.12');
  assert.equal(V.nextAddress('10.0.0.11', ['10.0.0.11', '10.0.0.12']), '10.0.0.13');
  assert.equal(V.nextAddress('10.0.0.254', []), null);
  assert.equal(V.nextAddress(undefined, []), null);
  assert.equal(V.nextAddress('host.example.test', []), null);
});
