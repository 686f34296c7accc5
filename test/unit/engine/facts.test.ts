import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseFacts, parseLimits, factsScript, splitSections, parseInterfaces } from '../../../cli/engine/facts.ts';

const M = '__M__';
const sample = [
  `${M}hostname`,
  'lb01',
  `${M}os`,
  'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"',
  'ID=debian',
  'VERSION_ID="12"',
  'VERSION_CODENAME=bookworm',
  `${M}arch`,
  'x86_64',
  `${M}kernel`,
  '6.1.0-18-amd64',
  `${M}init`,
  'systemd',
  `${M}mem`,
  '2048000',
  `${M}cpus`,
  '2',
  `${M}limits`,
  '536870912',
  '50000 100000',
  `${M}ip`,
  '---',
  '1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever',
  '2: eth0    inet 10.213.0.11/24 brd 10.213.0.255 scope global eth0\\       valid_lft forever preferred_lft forever',
  '2: eth0    inet 10.213.0.100/24 scope global secondary eth0',
  '---',
  '1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN mode DEFAULT group default qlen 1000',
  '2: eth0@if7: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP mode DEFAULT group default qlen 1000',
  `${M}pkgs`,
  'apache2 un ',
  'curl ii 7.88.1-10',
  'nodejs ii 18.19.0',
  `${M}svc`,
  'Id=apache2.service',
  'LoadState=not-found',
  'ActiveState=inactive',
  'UnitFileState=',
  '',
  'Id=ssh.service',
  'LoadState=loaded',
  'ActiveState=active',
  'UnitFileState=enabled',
  `${M}user`,
  'root',
  `${M}virt`,
  'systemd-nspawn',
  'systemd-nspawn',
  `${M}state`,
  'drain.web01=maint',
].join('\n');

test('facts: one answer parsed into OS, interfaces, packages, services', () => {
  const f = parseFacts(sample, M);
  assert.equal(f.hostname, 'lb01');
  assert.deepEqual(f.os, { id: 'debian', versionId: '12', codename: 'bookworm', prettyName: 'Debian GNU/Linux 12 (bookworm)' });
  // the cgroup's memory.max (512 MiB) and cpu.max (half a core) win over the RAM and nproc
  assert.equal(f.memoryMb, 512);
  assert.equal(f.cpus, 2);
  assert.equal(f.cpuCores, 0.5);
  assert.deepEqual(f.limits, { memoryMb: 512, cpus: 0.5 });
  assert.equal(f.init, 'systemd');
  assert.equal(f.container, true);
  assert.deepEqual(
    f.interfaces.find((i) => i.name === 'eth0'),
    { name: 'eth0', up: true, addresses: ['10.213.0.11/24', '10.213.0.100/24'] },
  );
  assert.deepEqual(f.packages, { curl: '7.88.1-10', nodejs: '18.19.0' });
  assert.deepEqual(f.services.ssh, { active: 'active', enabled: 'enabled' });
  assert.deepEqual(f.services.apache2, { active: 'inactive', enabled: 'not-found' });
  assert.deepEqual(f.records, { 'drain.web01': 'maint' });
});

test('facts: cgroup limits, v2 and v1 alike; none, or one above the RAM, is no limit', () => {
  assert.deepEqual(parseLimits('max\nmax 100000', 2000), { memoryMb: null, cpus: null });
  assert.deepEqual(parseLimits('1073741824\n150000 100000', 2000), { memoryMb: 1024, cpus: 1.5 });
  // cgroup v1 without a limit: a number near 2^63
  assert.deepEqual(parseLimits('9223372036854771712\nmax', 2000), { memoryMb: null, cpus: null });
  assert.deepEqual(parseLimits('', 2000), { memoryMb: null, cpus: null });
  const f = parseFacts(sample.replace('536870912\n50000 100000', 'max\nmax 100000'), M);
  assert.equal(f.memoryMb, 2000);
  assert.equal(f.cpuCores, 2);
  const s = factsScript(M);
  assert.match(s, /\/sys\/fs\/cgroup\/memory\.max/);
  assert.match(s, /\/sys\/fs\/cgroup\/cpu\.max/);
});

test('facts: a missing section is an error, not a guess', () => {
  assert.throws(() => parseFacts(sample.replace(`${M}user\nroot\n`, ''), M), /section user missing/);
});

test('facts: the script asks every section in one shell script', () => {
  const s = factsScript(M);
  for (const name of ['hostname', 'os', 'arch', 'ip', 'pkgs', 'svc', 'virt']) assert.ok(s.includes(`echo ${M}${name}`));
  assert.deepEqual(splitSections(`${M}a\n1\n2\n${M}b\n3`, M), { a: '1\n2', b: '3' });
});

test('facts: interfaces from `ip -j addr show` (JSON), as iproute2 5.x and 6.x print it', () => {
  const json = JSON.stringify([
    {
      ifindex: 1,
      ifname: 'lo',
      flags: ['LOOPBACK', 'UP', 'LOWER_UP'],
      addr_info: [
        { family: 'inet', local: '127.0.0.1', prefixlen: 8 },
        { family: 'inet6', local: '::1', prefixlen: 128 },
      ],
    },
    {
      ifindex: 2,
      link_index: 7,
      ifname: 'eth0',
      flags: ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'],
      addr_info: [
        { family: 'inet', local: '10.213.0.11', prefixlen: 24 },
        { family: 'inet', local: '10.213.0.100', prefixlen: 24, secondary: true },
      ],
    },
    { ifindex: 3, ifname: 'eth1', flags: ['BROADCAST', 'MULTICAST'], addr_info: [] },
  ]);
  assert.deepEqual(parseInterfaces(json), [
    { name: 'lo', up: true, addresses: ['127.0.0.1/8', '::1/128'] },
    { name: 'eth0', up: true, addresses: ['10.213.0.11/24', '10.213.0.100/24'] },
    { name: 'eth1', up: false, addresses: [] },
  ]);
  const f = parseFacts(sample.replace(/(__M__ip\n)[\s\S]*?(?=__M__pkgs)/, `$1${json}\n`), M);
  assert.deepEqual(f.interfaces.find((i) => i.name === 'eth0')?.addresses, ['10.213.0.11/24', '10.213.0.100/24']);
});

test('facts: the packages and services read are those the roles name, plus sshd and sudo', () => {
  const s = factsScript(M, { packages: ['haproxy'], services: ['hasetup-proxy'] });
  assert.match(s, /dpkg-query .* openssh-server sudo haproxy /);
  assert.match(s, /systemctl show .* -- ssh\.service hasetup-proxy\.service /);
});
