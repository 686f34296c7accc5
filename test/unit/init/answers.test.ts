// Answers given ahead: the answers file (YAML, errors at file:line:col: field) and the flags (errors
// name the flag), both through the prompts' validators; what a run without a terminal lacks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkFlags, checkPrivateKey, mergeGiven, missingAnswers, readAnswersFile } from '../../../cli/init/answers.ts';

const work = mkdtempSync(join(tmpdir(), 'hasetup-init-answers-'));
test.after(() => rmSync(work, { recursive: true, force: true }));

let n = 0;
function file(text: string): string {
  const f = join(work, `answers${++n}.yaml`);
  writeFileSync(f, text);
  return f;
}
const key = join(work, 'id_test');
writeFileSync(key, '-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n');
const noResolve = async (name: string): Promise<string> => {
  throw Object.assign(new Error(`no resolver in this test (${name})`), { code: 'ENOTFOUND' });
};

test('a complete answers file gives every answer', async () => {
  const f = file(`cluster: shop
web_nodes: 3
db_replica: true
hosts:
  lb: [lb1=10.1.0.11, { name: lb2, address: 10.1.0.12 }]
  web: [10.1.0.21, 10.1.0.22, web-c=10.1.0.23]
  db: [10.1.0.31, 10.1.0.32]
ssh: { user: deploy, port: 2222, private_key: id_test, connect_timeout: 5, known_hosts: keys/known }
vip: 10.1.0.100/24
interface: ens3
vrrp: unicast
admin_cidrs: [10.1.0.5/32, 192.168.7.0/24]
runtime: haproxy
`);
  const r = await readAnswersFile(f, noResolve);
  assert.deepEqual(r.errors, []);
  assert.deepEqual(r.given, {
    cluster: 'shop',
    webNodes: 3,
    dbReplica: true,
    hosts: {
      lb: [
        { name: 'lb1', address: '10.1.0.11' },
        { name: 'lb2', address: '10.1.0.12' },
      ],
      web: [{ address: '10.1.0.21' }, { address: '10.1.0.22' }, { name: 'web-c', address: '10.1.0.23' }],
      db: [{ address: '10.1.0.31' }, { address: '10.1.0.32' }],
    },
    sshUser: 'deploy',
    sshPort: 2222,
    sshKey: key, // relative to the answers file's folder
    connectTimeout: 5,
    knownHosts: join(work, 'keys/known'),
    vip: '10.1.0.100/24',
    interface: 'ens3',
    vrrp: 'unicast',
    adminCidrs: ['10.1.0.5/32', '192.168.7.0/24'],
    runtime: 'haproxy',
  });
});

test("answers file errors: every one at once, at file:line:col: field, with the prompts' messages", async () => {
  const f = file(`cluster: Shop
hosts:
  lb: [10.1.0.11, 10.1.0.11]
  web: [web01=10.1.0.300]
  db: [lb01=10.1.0.31]
ssh: { port: 70000, private_key: nope }
vip: 10.2.0.100/24
admin_cidrs: 10.1.0.5/40
`);
  const r = await readAnswersFile(f, noResolve);
  assert.deepEqual(r.errors, [
    `${f}:1:10: cluster: expected a cluster name (lower-case letters, digits and inner dashes, at most 63)`,
    `${f}:3:19: hosts.lb[1]: 10.1.0.11: 10.1.0.11 is already the address of load balancer 1 (lb01): addresses are unique in the cluster`,
    `${f}:4:9: hosts.web[0]: 10.1.0.300: expected an IPv4 address like 10.0.0.1 (no /prefix)`,
    `${f}:5:8: hosts.db[0]: "lb01" is already the name of load balancer 1: host names are unique in the cluster`,
    `${f}:6:14: ssh.port: expected an integer from 1 to 65535`,
    `${f}:6:34: ssh.private_key: no such file: ${join(work, 'nope')}`,
    `${f}:7:6: vip: 10.2.0.100/24 is outside the subnet of load balancer lb01 (10.1.0.11): the VIP must be in the load balancers' subnet`,
    `${f}:8:14: admin_cidrs: 10.1.0.5/40: expected an IPv4 CIDR like 10.0.0.0/24 (or a single address)`,
  ]);
});

test('answers file: unknown keys, wrong types, YAML syntax, a missing file', async () => {
  const types = await readAnswersFile(file('clustr: x\nweb_nodes: two\nhosts: { lb: 10.0.0.1 }\nvrrp: broadcast\n'), noResolve);
  assert.deepEqual(
    types.errors.map((e) => e.replace(/^.*?answers\d+\.yaml:/, '')),
    [
      '1:1: clustr: unknown key (did you mean "cluster"?)',
      '2:12: web_nodes: expected a number, got "two"',
      '3:14: hosts.lb: expected a list of hosts, got "10.0.0.1"',
      '4:7: vrrp: expected multicast or unicast, got "broadcast"',
    ],
  );
  const syntax = await readAnswersFile(file('hosts: [\n'), noResolve);
  assert.match(syntax.errors[0], /answers\d+\.yaml:\d+:\d+: YAML syntax error/);
  const missing = await readAnswersFile(join(work, 'none.yaml'), noResolve);
  assert.deepEqual(missing.errors, [`${join(work, 'none.yaml')}: cannot read the answers file: no such file`]);
  const wrongCount = await readAnswersFile(file('web_nodes: 3\nhosts: { lb: [10.0.0.1], web: [10.0.0.21] }\n'), noResolve);
  assert.deepEqual(
    wrongCount.errors.map((e) => e.replace(/^.*?answers\d+\.yaml:/, '')),
    ['2:14: hosts.lb: expected 2 load balancers, got 1', '2:31: hosts.web: expected 3 web nodes, got 1'],
  );
});

test('flags: NAME=ADDRESS or ADDRESS lists, every problem named by its flag', async () => {
  const ok = await checkFlags(
    {
      lb: 'a1=10.5.0.11,10.5.0.12',
      web: '10.5.0.21 10.5.0.22 10.5.0.23',
      db: '10.5.0.31',
      sshPort: '2200',
      adminCidr: ['10.5.0.9', '10.9.0.0/16,10.8.0.1'],
      sshKey: 'agent',
    },
    { baseDir: work, resolve: noResolve },
  );
  assert.deepEqual(ok.errors, []);
  assert.deepEqual(ok.given.hosts.lb, [{ name: 'a1', address: '10.5.0.11' }, { address: '10.5.0.12' }]);
  assert.equal(ok.given.webNodes, 3, 'the topology follows the hosts given');
  assert.equal(ok.given.dbReplica, false);
  assert.equal(ok.given.sshPort, 2200);
  assert.equal(ok.given.sshKey, null, 'agent: no key file');
  assert.deepEqual(ok.given.adminCidrs, ['10.5.0.9', '10.9.0.0/16', '10.8.0.1']);

  const bad = await checkFlags(
    {
      cluster: 'A',
      lb: '10.5.0.11',
      web: 'web01=10.5.0.11',
      sshPort: 'ssh',
      vrrp: 'broadcast',
      runtime: 'nginx',
      webNodes: '0',
      vip: '10.5.0.100',
      sshKey: join(work, 'answers1.yaml'),
    },
    { baseDir: work, resolve: noResolve },
  );
  assert.deepEqual(bad.errors, [
    '--vrrp: expected multicast or unicast, got "broadcast"',
    '--runtime: expected bundled or haproxy, got "nginx"',
    '--cluster: expected a cluster name (lower-case letters, digits and inner dashes, at most 63)',
    '--web-nodes: expected an integer from 1 to 99',
    '--lb: expected 2 load balancers, got 1',
    '--web: 10.5.0.11: 10.5.0.11 is already the address of load balancer 1 (lb01): addresses are unique in the cluster',
    '--ssh-port: expected an integer from 1 to 65535',
    `--ssh-key: ${join(work, 'answers1.yaml')} is not a readable SSH private key (it should start with -----BEGIN ... PRIVATE KEY-----)`,
    '--vip: expected an IPv4 address with its prefix length, like 10.0.0.100/24',
  ]);
});

test('flags win over the answers file; the hosts given decide the topology', async () => {
  const fromFile = (await readAnswersFile(file('cluster: a\nweb_nodes: 1\nhosts: { web: [10.0.0.21] }\nvrrp: unicast\n'), noResolve)).given;
  const fromFlags = (await checkFlags({ cluster: 'b', web: '10.0.0.21,10.0.0.22' }, { baseDir: work, resolve: noResolve })).given;
  const m = mergeGiven(fromFile, fromFlags);
  assert.equal(m.cluster, 'b');
  assert.equal(m.vrrp, 'unicast');
  assert.equal(m.webNodes, 2);
  assert.equal(m.hosts.web?.length, 2);
});

test('without a terminal, the missing answers are the host addresses, as flags', () => {
  assert.deepEqual(missingAnswers({ hosts: {} }), [
    { flag: '--lb lb01=ADDRESS,lb02=ADDRESS', what: 'the addresses of the 2 load balancers' },
    { flag: '--web web01=ADDRESS,web02=ADDRESS', what: 'the addresses of the 2 web nodes' },
    { flag: '--db db01=ADDRESS', what: 'the address of the MySQL primary' },
  ]);
  assert.deepEqual(
    missingAnswers({ webNodes: 3, dbReplica: true, hosts: { lb: [{ address: '10.0.0.11' }, { address: '10.0.0.12' }] } }).map(
      (m) => m.flag,
    ),
    ['--web web01=ADDRESS,web02=ADDRESS,...', '--db db01=ADDRESS,db02=ADDRESS'],
  );
  const full = { hosts: { lb: [{ address: 'a' }, { address: 'b' }], web: [{ address: 'c' }], db: [{ address: 'd' }] } };
  assert.deepEqual(missingAnswers(full), []);
});

test('the private key: agent, a key file (~ form under home), or a clear refusal', () => {
  assert.deepEqual(checkPrivateKey('agent', work), { ok: true, key: null });
  assert.deepEqual(checkPrivateKey('', work), { ok: true, key: null });
  assert.deepEqual(checkPrivateKey('id_test', work), { ok: true, key });
  assert.deepEqual(checkPrivateKey('missing', work), { ok: false, message: `no such file: ${join(work, 'missing')}` });
});
