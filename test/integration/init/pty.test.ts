// The real wizard in a pseudo-terminal (tmux), against real sshd hosts in namespaces of this test's
// own: every prompt answered by keys, a wrong address refused and asked again, the LB interface read
// from the LBs (never asked), a problem shown and fixed by changing an answer, then the files and
// their modes. Ctrl-C at a prompt, and after the host checks, leaves no file behind.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { loadInventory } from '../../../inventory/load.ts';
import { commandUnavailable, prerequisites, rootUnavailable } from '../../helpers/env.ts';
import { CONTROLLER, Lan, SEED_HOSTS, SUBNET } from './lan.ts';
import { Pane } from './tmux.ts';

const REPO = fileURLToPath(new URL('../../..', import.meta.url));
const TSX = pathToFileURL(join(REPO, 'node_modules/tsx/dist/loader.mjs')).href;
const skip = rootUnavailable() ?? commandUnavailable('tmux', '/usr/sbin/sshd', 'ssh-keygen', 'ping');

let lan: Lan | undefined;
let work = '';
const panes: Pane[] = [];

before(async () => {
  if (skip) return;
  lan = await Lan.start(SEED_HOSTS);
  work = mkdtempSync(join(tmpdir(), 'hasetup-init-pty-'));
  // the user's ~/.ssh holds the key the hosts accept: the wizard offers it first
  mkdirSync(join(work, 'home/.ssh'), { recursive: true, mode: 0o700 });
  copyFileSync(lan.key, join(work, 'home/.ssh/id_ed25519'));
  copyFileSync(`${lan.key}.pub`, join(work, 'home/.ssh/id_ed25519.pub'));
});
after(async () => {
  for (const p of panes) p.kill();
  await lan?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** The wizard, from the sources, in a terminal of its own; out: the folder it writes to. */
function wizard(out: string, extra: string[] = []): Pane {
  // a user's terminal: live progress and marks (CI and NO_COLOR would make the output plain)
  const env = { HOME: join(work, 'home'), CI: '', NO_COLOR: '' };
  const p = new Pane([process.execPath, '--import', TSX, join(REPO, 'cli/main.ts'), 'init', out, ...extra], { cwd: work, env });
  panes.push(p);
  return p;
}

const mode = (f: string) => (statSync(f).mode & 0o777).toString(8);
const scratchDirs = () => readdirSync(tmpdir()).filter((f) => /^hasetup-init-[A-Za-z0-9]{6}$/.test(f));

/** Moves the cursor of the active select prompt up to the choice that matches (bounded). */
async function pick(p: Pane, choice: RegExp): Promise<void> {
  for (let i = 0; i < 30; i++) {
    if (new RegExp(`^❯ ${choice.source}`, 'm').test(p.screen())) {
      p.keys('Enter');
      return;
    }
    p.keys('Up');
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no choice ${choice} in:\n${p.screen()}`);
}

/**
 * Answers the questions before the host checks: the seed's topology, the defaults and the test
 * LAN's addresses. With wrongFirst, lb01's address is first typed wrong: it must be refused with the
 * schema's message, and the wrong answer stay on the line for editing.
 */
async function firstHalf(p: Pane, opts: { wrongFirst?: boolean } = {}): Promise<void> {
  await p.answer('Cluster name', 'shop');
  await p.answer('Topology'); // the seed's
  await p.answer('Name of load balancer 1');
  if (opts.wrongFirst) {
    await p.answer('Address of lb01', `${SUBNET}.300`);
    const refused = await p.waitFor(/^> expected an IPv4 address like 10\.0\.0\.1 \(no \/prefix\)$/m);
    assert.match(
      refused,
      new RegExp(`^\\? Address of lb01 ${SUBNET.replace(/\./g, '\\.')}\\.300$`, 'm'),
      'still asking, the wrong answer kept for editing',
    );
    p.keys('C-u');
  }
  await p.answer('Address of lb01', `${SUBNET}.11`);
  await p.answer('Name of load balancer 2');
  await p.answer('Address of lb02'); // the default: the next address
  await p.answer('Name of web node 1');
  await p.answer('Address of web01', `${SUBNET}.21`);
  await p.answer('Name of web node 2');
  await p.answer('Address of web02');
  await p.answer('Name of the MySQL primary');
  await p.answer('Address of db01', `${SUBNET}.31`);
  await p.answer('How does hasetup log in to the hosts?'); // as root
  await p.answer('SSH port');
  await p.answer('SSH private key'); // ~/.ssh/id_ed25519, found there
}

test('the wizard in a terminal: every prompt, a wrong address asked again, the interface read, a problem fixed, the files written', async (t) => {
  if (!prerequisites(t, skip) || !lan) return;
  const out = join(work, 'cluster');
  const p = wizard('cluster');
  await firstHalf(p, { wrongFirst: true });

  // the host checks run; then the questions that need what the hosts said
  await p.answer('Virtual IP (address/prefix)', '', 60_000);
  await p.waitFor(/^✔ Virtual IP \(address\/prefix\) 10\.213\.240\.100\/24$/m);
  await p.waitFor(/^\? VRRP adverts/m);
  p.keys('Down'); // unicast
  await p.answer('VRRP adverts');
  await p.answer('Admin networks allowed to SSH'); // the suggestion: this machine as the hosts see it
  await p.answer('Load-balancer software');
  const checked = await p.waitFor(/^\? What now\?/m, 60_000);
  assert.match(checked, /^ {2}Every check passed\.$/m);

  // go back: a wrong interface is a problem with what to do, then put right
  p.keys('Down'); // change an answer
  await p.answer('What now?');
  await p.waitFor(/^\? Which answer\?/m);
  await pick(p, /LB interface \(eth0\)$/);
  await p.waitFor(/^\? Interface on the load balancers/m);
  p.keys('C-u');
  await p.answer('Interface on the load balancers', 'eth7');
  const bad = await p.waitFor(/^\? What now\?/m, 60_000);
  assert.match(bad, /interface\s+✖\s+no interface eth7 \(it has lo, eth0\)/);
  assert.match(bad, /→ set the LB interface to eth0, which carries 10\.213\.240\.11/);
  assert.match(bad, /^2 problems found\.$/m);
  p.keys('Enter'); // the default now: change an answer
  await p.waitFor(/^\? Which answer\?/m);
  await pick(p, /LB interface \(eth7\)$/);
  await p.waitFor(/^\? Interface on the load balancers/m);
  p.keys('C-u');
  await p.answer('Interface on the load balancers', 'eth0');
  await p.waitFor(/^ {2}Every check passed\.$/m, 60_000);
  await p.answer('What now?'); // write
  assert.equal(await p.exitCode(), 0, p.screen());

  const all = p.history();
  assert.match(all, /^LB interface: eth0 \(read from lb01 and lb02: it carries their addresses\)$/m);
  assert.deepEqual(all.match(/^✔ Interface on the load balancers .*$/gm), [
    '✔ Interface on the load balancers eth7',
    '✔ Interface on the load balancers eth0',
  ]);
  assert.ok(
    all.indexOf('✔ Interface on the load balancers') > all.indexOf('✔ What now? change an answer'),
    'asked only when changed by hand, never before',
  );
  for (const h of ['lb01', 'lb02', 'web01', 'web02', 'db01']) {
    const fp = readFileSync(lan.hostKeyPub(h), 'utf8');
    assert.ok(fp.startsWith('ssh-ed25519 '));
    assert.match(
      all,
      new RegExp(`^✔ ${h} ${SUBNET.replace(/\./g, '\\.')}\\.\\d+: ED25519 SHA256:\\S+ \\(new key\\), Debian`, 'm'),
      `${h}'s fingerprint shown`,
    );
  }

  assert.deepEqual(readdirSync(out).sort(), ['.hasetup', 'inventory.secrets.yaml', 'inventory.yaml']);
  assert.equal(mode(join(out, 'inventory.yaml')), '644');
  assert.equal(mode(join(out, 'inventory.secrets.yaml')), '600');
  const inv = await loadInventory(join(out, 'inventory.yaml'), { createSecrets: false });
  assert.equal(inv.cluster, 'shop');
  assert.deepEqual(
    inv.hosts.map((h) => `${h.name}=${h.address}`),
    ['lb01=10.213.240.11', 'lb02=10.213.240.12', 'web01=10.213.240.21', 'web02=10.213.240.22', 'db01=10.213.240.31'],
  );
  assert.deepEqual(inv.vip, { address: '10.213.240.100', prefix: 24, interface: 'eth0' });
  assert.equal(inv.vrrp.unicast, true);
  assert.deepEqual(inv.roles.firewall.adminCidrs, [`${CONTROLLER}/32`]);
  assert.match(readFileSync(join(out, 'inventory.yaml'), 'utf8'), /^ {2}private_key: ~\/\.ssh\/id_ed25519$/m, 'written as ~/...');
  const known = readFileSync(join(out, '.hasetup/known_hosts'), 'utf8').trim().split('\n');
  assert.equal(known.length, 5);
  for (const h of ['lb01', 'lb02', 'web01', 'web02', 'db01'])
    assert.ok(
      known.includes(`${lan.address(h)} ${readFileSync(lan.hostKeyPub(h), 'utf8').split(' ').slice(0, 2).join(' ')}`),
      `${h}'s key recorded where apply reads it`,
    );
  for (const v of Object.values(inv.secrets)) if (v !== inv.secrets.file) assert.ok(!all.includes(v), 'no secret on the screen');
});

test('Ctrl-C at a prompt: exit 130, no file, no folder', async (t) => {
  if (!prerequisites(t, skip) || !lan) return;
  const p = wizard('stopped');
  await p.answer('Cluster name');
  await p.answer('Topology');
  await p.waitFor(/^\? Name of load balancer 1/m);
  p.keys('C-c');
  assert.equal(await p.exitCode(), 130);
  assert.match(p.screen(), /^hasetup: interrupted: nothing was written$/m);
  assert.equal(existsSync(join(work, 'stopped')), false);
});

test('Ctrl-C after the host checks: the host keys seen are not recorded either', async (t) => {
  if (!prerequisites(t, skip) || !lan) return;
  const scratchBefore = scratchDirs();
  const p = wizard('late');
  await firstHalf(p);
  await p.answer('Virtual IP (address/prefix)', '', 60_000);
  await p.answer('VRRP adverts');
  await p.answer('Admin networks allowed to SSH');
  await p.answer('Load-balancer software');
  const s = await p.waitFor(/^\? What now\?/m, 60_000);
  assert.match(s, /10 checks passed, key ED25519 SHA256:\S+ \(new: recorded when written\)/);
  p.keys('C-c');
  assert.equal(await p.exitCode(), 130);
  assert.equal(existsSync(join(work, 'late')), false, 'no inventory, no secrets, no known_hosts');
  assert.deepEqual(scratchDirs(), scratchBefore, 'the scratch known_hosts is gone too');
});
