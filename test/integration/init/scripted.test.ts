// `hasetup init` run by a script (no terminal) against real sshd hosts in namespaces of this test's
// own: with every check passing it writes the inventory at once, with the interface, the VIP and the
// admin network read from the hosts and their keys recorded; a host that does not answer makes it
// exit 1 with the table and write nothing; a second run knows the keys.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadInventory } from '../../../inventory/load.ts';
import { commandUnavailable, prerequisites, rootUnavailable } from '../../helpers/env.ts';
import { CONTROLLER, Lan, SEED_HOSTS, SUBNET } from './lan.ts';

const REPO = fileURLToPath(new URL('../../..', import.meta.url));
const skip = rootUnavailable() ?? commandUnavailable('/usr/sbin/sshd', 'ssh-keygen', 'ping');
const HOSTS = SEED_HOSTS.map((h) => h.name);

let lan: Lan | undefined;
let work = '';
before(async () => {
  if (skip) return;
  lan = await Lan.start([...SEED_HOSTS, { name: 'web03', octet: 23, sshd: false }]);
  work = mkdtempSync(join(tmpdir(), 'hasetup-init-scripted-'));
});
after(async () => {
  await lan?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** The command from the sources, stdin and stdout not a terminal (as in a script). */
function init(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(REPO, 'cli/main.ts'), 'init', ...args], {
      cwd: REPO,
      env: { ...process.env, HOME: work, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b) => (stdout += b));
    child.stderr.on('data', (b) => (stderr += b));
    const timer = setTimeout(() => child.kill('SIGTERM'), 120_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 255, stdout, stderr });
    });
  });
}

const hostArgs = (web = `${SUBNET}.21,${SUBNET}.22`) => [
  '--lb',
  `${SUBNET}.11,${SUBNET}.12`,
  '--web',
  web,
  '--db',
  `${SUBNET}.31`,
  '--ssh-key',
  lan!.key,
  '--connect-timeout',
  '5',
];
const keyLine = (h: string) => `${lan!.address(h)} ${readFileSync(lan!.hostKeyPub(h), 'utf8').split(' ').slice(0, 2).join(' ')}`;

test('every check passes: written at once, with what the hosts said', async (t) => {
  if (!prerequisites(t, skip) || !lan) return;
  const dir = join(work, 'good');
  const r = await init([dir, ...hostArgs()]);
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  for (const h of HOSTS)
    assert.match(
      r.stdout,
      new RegExp(`${h} ${SUBNET.replace(/\./g, '\\.')}\\.\\d+: ED25519 SHA256:\\S+ \\(new key\\), Debian`),
      `${h}: live progress with the fingerprint`,
    );
  assert.match(r.stdout, /^LB interface: eth0 \(read from lb01 and lb02: it carries their addresses\)$/m);
  for (const h of ['lb01', 'lb02'])
    assert.match(r.stdout, new RegExp(`^${h} +all +ok +10 checks passed, key ED25519 SHA256:\\S+ \\(new: recorded when written\\)$`, 'm'));
  for (const h of ['web01', 'web02', 'db01']) assert.match(r.stdout, new RegExp(`^${h} +all +ok +9 checks passed`, 'm'));

  const inv = await loadInventory(join(dir, 'inventory.yaml'), { createSecrets: false });
  assert.deepEqual(inv.vip, { address: `${SUBNET}.100`, prefix: 24, interface: 'eth0' });
  assert.deepEqual(inv.roles.firewall.adminCidrs, [`${CONTROLLER}/32`], 'this machine as the hosts see it');
  assert.equal(inv.hosts[0].ssh.privateKey, lan.key);
  assert.equal(statSync(join(dir, 'inventory.secrets.yaml')).mode & 0o777, 0o600);
  assert.deepEqual(readFileSync(join(dir, '.hasetup/known_hosts'), 'utf8').trim().split('\n').sort(), HOSTS.map(keyLine).sort());
  assert.match(r.stdout, /^Recorded 5 host keys in .*good\/\.hasetup\/known_hosts$/m);

  // again, replacing it: the keys are known now, the secrets kept
  const secrets = readFileSync(join(dir, 'inventory.secrets.yaml'), 'utf8');
  const again = await init([dir, ...hostArgs(), '--force', '--vrrp', 'unicast']);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /lb01 10\.213\.240\.11: ED25519 SHA256:\S+ \(known key\)/);
  assert.doesNotMatch(again.stdout, /Recorded \d+ host key/);
  assert.equal(readFileSync(join(dir, '.hasetup/known_hosts'), 'utf8').trim().split('\n').length, 5);
  assert.equal(readFileSync(join(dir, 'inventory.secrets.yaml'), 'utf8'), secrets);
  assert.equal((await loadInventory(join(dir, 'inventory.yaml'))).vrrp.unicast, true);
});

test('a host that does not answer: exit 1, the table says what to do, nothing written', async (t) => {
  if (!prerequisites(t, skip) || !lan) return;
  const dir = join(work, 'bad');
  const r = await init([dir, ...hostArgs(`${SUBNET}.21,${SUBNET}.23`), '--admin-cidr', '192.0.2.0/24']);
  assert.equal(r.code, 1, r.stdout);
  assert.match(r.stdout, /^web02 +ssh +PROBLEM +connection refused$/m);
  assert.match(r.stdout, /^ +-> start sshd on web02, or give the port it listens on \(now 22\)$/m);
  assert.match(r.stdout, /^ +-> add 10\.213\.240\.1\/32 to the admin networks$/m, 'the firewall would have locked this machine out');
  assert.match(r.stdout, /^ +others +- +not checked: the host was not reached$/m);
  assert.match(r.stderr, /^hasetup: 5 problems found \(see the table\): nothing was written\./m);
  assert.equal(existsSync(dir), false, 'no inventory, no secrets, no known_hosts');
});

test('--answers FILE: the same as the flags', async (t) => {
  if (!prerequisites(t, skip) || !lan) return;
  const dir = join(work, 'answers');
  const answers = join(work, 'answers.yaml');
  writeFileSync(
    answers,
    [
      'cluster: scripted',
      'hosts:',
      `  lb: [lb01=${SUBNET}.11, lb02=${SUBNET}.12]`,
      `  web: [{ name: web01, address: ${SUBNET}.21 }, { name: web02, address: ${SUBNET}.22 }]`,
      `  db: [db01=${SUBNET}.31]`,
      `ssh: { user: root, private_key: ${lan.key}, connect_timeout: 5 }`,
      'runtime: haproxy',
      '',
    ].join('\n'),
  );
  const r = await init([dir, '--answers', answers]);
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  const inv = await loadInventory(join(dir, 'inventory.yaml'));
  assert.equal(inv.cluster, 'scripted');
  assert.equal(inv.runtime, 'haproxy');
  assert.equal(inv.vip.interface, 'eth0');
});
