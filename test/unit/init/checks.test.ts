// The host checks judged from what a probe found (no host here: the probes are made up, as the
// engine's unit tests make up probe output). The real probes are the integration tests'.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Facts } from '../../../cli/engine/facts.ts';
import type { Answers } from '../../../cli/init/answers.ts';
import { answerRows, detectInterface, hostRows, NEEDS, problems, renderTable, vipHolder, type Row } from '../../../cli/init/checks.ts';
import type { Probe, Reached, Target } from '../../../cli/init/probe.ts';

const answers = (over: Partial<Answers> = {}): Answers => ({
  cluster: 'lab',
  hosts: {
    lb: [
      { name: 'lb01', address: '10.0.0.11' },
      { name: 'lb02', address: '10.0.0.12' },
    ],
    web: [{ name: 'web01', address: '10.0.0.21' }],
    db: [{ name: 'db01', address: '10.0.0.31' }],
  },
  sshUser: 'root',
  sshPort: 22,
  sshKey: null,
  connectTimeout: 10,
  knownHosts: null,
  interface: 'eth0',
  vip: '10.0.0.100/24',
  vrrp: 'multicast',
  adminCidrs: ['10.0.0.5/32'],
  runtime: 'bundled',
  ...over,
});

function facts(address: string, over: Partial<Facts> = {}): Facts {
  return {
    hostname: 'h',
    os: { id: 'debian', versionId: '12', codename: 'bookworm', prettyName: 'Debian GNU/Linux 12 (bookworm)' },
    arch: 'x86_64',
    kernel: '6.1',
    init: 'systemd',
    virt: 'kvm',
    container: false,
    memoryMb: 1024,
    cpus: 2,
    cpuCores: 2,
    limits: { memoryMb: null, cpus: null },
    interfaces: [
      { name: 'lo', addresses: ['127.0.0.1/8'], up: true },
      { name: 'eth0', addresses: [`${address}/24`, 'fe80::1/64'], up: true },
    ],
    packages: {},
    services: {},
    user: 'root',
    records: {},
    ...over,
  };
}

function reached(address: string, over: Partial<Reached> = {}, f: Partial<Facts> = {}): Reached {
  return {
    ok: true,
    target: `root@${address}:22`,
    facts: facts(address, f),
    sudo: 'root',
    diskFreeMb: 10_000,
    controller: '10.0.0.5',
    neighbours: [],
    hostKey: { type: 'ssh-ed25519', fingerprint: 'SHA256:abc', firstUse: true },
    ...over,
  };
}

const lb1: Target = { name: 'lb01', group: 'lb', address: '10.0.0.11', sshHost: '10.0.0.11' };
const lb2: Target = { name: 'lb02', group: 'lb', address: '10.0.0.12', sshHost: '10.0.0.12' };
const web: Target = { name: 'web01', group: 'web', address: '10.0.0.21', sshHost: '10.0.0.21' };
const db: Target = { name: 'db01', group: 'db', address: '10.0.0.31', sshHost: '10.0.0.31' };

const byCheck = (rows: Row[]) => Object.fromEntries(rows.map((r) => [r.check, r]));

test('a healthy load balancer passes every check, its key and the VIP included', () => {
  const rows = hostRows(lb1, reached(lb1.address), answers(), { state: 'free' });
  assert.deepEqual(
    rows.map((r) => [r.check, r.ok]),
    [
      ['ssh', true],
      ['host key', true],
      ['system', true],
      ['init', true],
      ['sudo', true],
      ['interface', true],
      ['memory', true],
      ['disk', true],
      ['firewall', true],
      ['vip', true],
    ],
  );
  const c = byCheck(rows);
  assert.equal(c['host key'].result, 'ED25519 SHA256:abc (new: recorded when written)');
  assert.equal(c.interface.result, 'eth0 carries 10.0.0.11/24');
  assert.equal(c.vip.result, '10.0.0.100 is free (no answer to ping or ARP from lb01)');
});

test('problems, each with what to do', () => {
  const p = reached(
    db.address,
    { sudo: 'password', sudoSays: 'sudo: a password is required', diskFreeMb: 100 },
    { os: { id: 'fedora', versionId: '40', codename: '', prettyName: 'Fedora Linux 40' }, init: 'other', memoryMb: 300 },
  );
  const c = byCheck(hostRows(db, p, answers({ sshUser: 'deploy' })));
  assert.deepEqual(c.system, {
    host: 'db01',
    check: 'system',
    ok: false,
    result: 'Fedora Linux 40: not Debian or Ubuntu',
    fix: "use a Debian or Ubuntu host: the roles install with apt and Debian's packages",
  });
  assert.equal(c.init.ok, false);
  assert.deepEqual(c.sudo, {
    host: 'db01',
    check: 'sudo',
    ok: false,
    result: 'sudo asks deploy for a password (sudo: a password is required)',
    fix: "on db01, as root: echo 'deploy ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/hasetup; chmod 440 /etc/sudoers.d/hasetup",
  });
  assert.deepEqual(
    [c.memory.ok, c.memory.result, c.memory.fix],
    [false, `300 MiB: a database host needs ${NEEDS.db.memoryMb} MiB`, 'give db01 at least 512 MiB of memory'],
  );
  assert.deepEqual([c.disk.ok, c.disk.result], [false, '100 MiB free on /var: a database host needs 2.0 GiB']);
  const none = byCheck(hostRows(db, reached(db.address, { sudo: 'missing' }), answers({ sshUser: 'deploy' })));
  assert.equal(none.sudo.fix, 'install sudo on db01 (apt-get install sudo), or log in as root');
});

test("the LB interface: missing, or not carrying the LB's address; other hosts: the address must be theirs", () => {
  const missing = byCheck(hostRows(lb1, reached(lb1.address), answers({ interface: 'ens3' })));
  assert.deepEqual(
    [missing.interface.ok, missing.interface.result, missing.interface.fix],
    [false, 'no interface ens3 (it has lo, eth0)', 'set the LB interface to eth0, which carries 10.0.0.11'],
  );
  const f = {
    interfaces: [
      { name: 'eth0', addresses: ['10.0.0.11/24'], up: true },
      { name: 'eth1', addresses: ['192.168.9.4/24'], up: true },
    ],
  };
  const other = byCheck(hostRows(lb1, reached(lb1.address, {}, f), answers({ interface: 'eth1' })));
  assert.deepEqual(
    [other.interface.ok, other.interface.result, other.interface.fix],
    [false, 'eth1 does not carry 10.0.0.11 (it has 192.168.9.4/24)', 'set the LB interface to eth0, which carries 10.0.0.11'],
  );
  const nat = byCheck(hostRows(web, reached('172.16.0.9'), answers()));
  assert.deepEqual(
    [nat.address.ok, nat.address.result, nat.address.fix],
    [
      false,
      '10.0.0.21 is not an address of web01 (it has 127.0.0.1/8, 172.16.0.9/24)',
      "give web01's own address, the one the other hosts reach it on",
    ],
  );
});

test('the firewall would lock this machine out: the admin networks lack its address as the host sees it', () => {
  const c = byCheck(hostRows(web, reached(web.address, { controller: '10.0.0.77' }), answers()));
  assert.deepEqual([c.firewall.ok, c.firewall.fix], [false, 'add 10.0.0.77/32 to the admin networks']);
  assert.equal(
    byCheck(hostRows(web, reached(web.address, { controller: '10.0.0.77' }), answers({ adminCidrs: ['10.0.0.0/24'] }))).firewall.ok,
    true,
  );
});

test("the VIP seen from an LB: in use, held by the LB, unknown; a prefix other than the LB subnet's", () => {
  const c = (v: Parameters<typeof hostRows>[3], a = answers()) => byCheck(hostRows(lb1, reached(lb1.address), a, v)).vip;
  assert.deepEqual([c({ state: 'in use' }).ok, c({ state: 'in use' }).fix], [false, 'choose a free address for the VIP']);
  assert.deepEqual(
    [c({ state: 'held', by: 'lb02' }).ok, c({ state: 'held', by: 'lb02' }).result],
    [true, "10.0.0.100 is already on lb02 (this cluster's VIP: it runs)"],
  );
  assert.deepEqual(
    [c({ state: 'unknown', why: 'lb01 has no ping command' }).ok, c({ state: 'unknown', why: 'lb01 has no ping command' }).result],
    [null, '10.0.0.100 not checked: lb01 has no ping command'],
  );
  const prefix = c({ state: 'free' }, answers({ vip: '10.0.0.100/16' }));
  assert.deepEqual([prefix.ok, prefix.fix], [false, 'give the VIP as 10.0.0.100/24']);
});

test("the VIP on an LB already is the cluster's own, whichever LB holds it", () => {
  const probes = new Map<string, Probe>([
    ['lb01', reached(lb1.address)],
    ['lb02', reached(lb2.address, {}, { interfaces: [{ name: 'eth0', addresses: ['10.0.0.12/24', '10.0.0.100/24'], up: true }] })],
  ]);
  assert.equal(vipHolder([lb1, lb2], probes, '10.0.0.100'), 'lb02');
  assert.equal(vipHolder([lb1, lb2], probes, '10.0.0.101'), null);
});

test('an unreachable host: its error and fix, the rest not checked', () => {
  const p: Probe = { ok: false, error: 'connection refused', fix: 'start sshd on web01, or give the port it listens on (now 22)' };
  assert.deepEqual(hostRows(web, p, answers()), [
    {
      host: 'web01',
      check: 'ssh',
      ok: false,
      result: 'connection refused',
      fix: 'start sshd on web01, or give the port it listens on (now 22)',
    },
    { host: 'web01', check: 'others', ok: null, result: 'not checked: the host was not reached' },
  ]);
});

test('the LB interface read from the LBs: agreed, different, or none answered', () => {
  const probes = new Map<string, Probe>([
    ['lb01', reached(lb1.address)],
    ['lb02', reached(lb2.address)],
  ]);
  assert.deepEqual(detectInterface([lb1, lb2], probes), { name: 'eth0', prefix: 24, from: ['lb01', 'lb02'] });
  probes.set('lb02', reached(lb2.address, {}, { interfaces: [{ name: 'ens3', addresses: ['10.0.0.12/24'], up: true }] }));
  assert.deepEqual(detectInterface([lb1, lb2], probes), {
    why: 'the load balancers carry their addresses on different interfaces (lb01: eth0, lb02: ens3); the VIP needs one name on both',
    guess: 'eth0',
  });
  probes.set('lb02', { ok: false, error: 'no route to host', fix: '' });
  assert.deepEqual(detectInterface([lb1, lb2], probes), { name: 'eth0', prefix: 24, from: ['lb01'] });
  assert.deepEqual(detectInterface([lb1, lb2], new Map()), { why: 'the hosts were not contacted' });
});

test('answers that no longer agree (an LB moved after the VIP was chosen) are a problem', () => {
  const a = answers();
  assert.deepEqual(answerRows(a), []);
  a.hosts.lb[0].address = '10.9.0.11';
  assert.deepEqual(
    answerRows(a).map((r) => [r.check, r.ok, r.fix]),
    [['vip', false, 'change the VIP']],
  );
});

test('the summary table: a host that passed is one line, the others check by check with what to do', () => {
  const rows = [
    ...hostRows(lb1, reached(lb1.address), answers(), { state: 'free' }),
    ...hostRows(web, { ok: false, error: 'connection refused', fix: 'start sshd on web01' }, answers()),
  ];
  assert.equal(problems(rows).length, 1);
  assert.equal(
    renderTable(rows, { unicode: false }),
    [
      'HOST   CHECK               RESULT',
      'lb01   all        ok       10 checks passed, key ED25519 SHA256:abc (new: recorded when written)',
      'web01  ssh        PROBLEM  connection refused',
      '                           -> start sshd on web01',
      '       others     -        not checked: the host was not reached',
    ].join('\n'),
  );
});
