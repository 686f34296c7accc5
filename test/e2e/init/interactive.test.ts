// End-to-end in the lab: `hasetup init` run interactively (in a pseudo-terminal, from the lab's
// controller namespace through `hasetup lab exec`) against the lab's hosts reads the LBs' interface
// by itself, never asking for it, suggests the controller's own address for the admin networks,
// and writes an inventory that the loader takes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CTL_ADDRESS, hostsFor, labConfig, repoRoot, VIP } from '../../../cli/lab/config.ts';

// the seed's five hosts (a lab with more web nodes or a replica has these too)
const HOSTS = hostsFor();
import { loadInventory } from '../../../inventory/load.ts';
import { ensureLab, labUnavailable, type Lab } from '../../helpers/lab.ts';
import { commandUnavailable, prerequisites } from '../../helpers/env.ts';
import { Pane } from '../../integration/init/tmux.ts';

const HASETUP = join(repoRoot, 'bin', 'hasetup.js');
const skip = labUnavailable() ?? commandUnavailable('tmux');
const addr = (name: string) => HOSTS.find((h) => h.name === name)!.address;

let lab: Lab | undefined;
let work = '';
let pane: Pane | undefined;
before(async () => {
  if (skip) return;
  lab = await ensureLab({ inventory: join(labConfig().stateDir, 'inventory.yaml') });
  work = mkdtempSync(join(tmpdir(), 'hasetup-e2e-init-tty-'));
});
after(async () => {
  pane?.kill();
  await lab?.release();
  if (work) rmSync(work, { recursive: true, force: true });
});

test('init in a terminal against the lab reads the LB interface by itself', async (t) => {
  if (!prerequisites(t, skip) || !lab) return;
  const key = (await loadInventory(lab.inventory)).hosts[0].ssh.privateKey;
  assert.ok(key);
  // a home of the test's own whose ~/.ssh holds the lab's key: the wizard offers it first
  const home = join(work, 'home');
  mkdirSync(join(home, '.ssh'), { recursive: true, mode: 0o700 });
  copyFileSync(key, join(home, '.ssh', 'id_ed25519'));
  const out = join(work, 'cluster');
  pane = new Pane([process.execPath, HASETUP, 'lab', 'exec', '--', process.execPath, HASETUP, 'init', out], {
    cwd: work,
    // `lab exec` finds the lab by its name and state folder, which HOME would otherwise move
    env: {
      HOME: home,
      HASETUP_LAB_NAME: lab.config.name,
      HASETUP_LAB_STATE: lab.config.stateDir,
      HASETUP_LAB_CACHE: lab.config.cacheDir,
      CI: '',
      NO_COLOR: '',
    },
  });
  const p = pane;
  await p.answer('Cluster name', 'labtty', 60_000);
  await p.answer('Topology');
  await p.answer('Name of load balancer 1');
  await p.answer('Address of lb01', addr('lb01'));
  await p.answer('Name of load balancer 2');
  await p.answer('Address of lb02'); // the next address: the lab's lb02
  await p.answer('Name of web node 1');
  await p.answer('Address of web01', addr('web01'));
  await p.answer('Name of web node 2');
  await p.answer('Address of web02');
  await p.answer('Name of the MySQL primary');
  await p.answer('Address of db01', addr('db01'));
  await p.answer('How does hasetup log in to the hosts?'); // as root
  await p.answer('SSH port');
  await p.answer('SSH private key');

  // the hosts are contacted; the next question is the VIP's: the interface was not asked
  const vipAsked = await p.waitFor(/^\? Virtual IP \(address\/prefix\)/m, 120_000);
  assert.match(vipAsked, /^LB interface: eth0 \(read from lb01 and lb02: it carries their addresses\)$/m);
  p.keys('C-u'); // the lab's VIP (the suggestion skips it when the cluster already holds it)
  await p.answer('Virtual IP (address/prefix)', VIP);
  await p.answer('VRRP adverts');
  const admin = await p.waitFor(/^\? Admin networks allowed to SSH/m);
  assert.match(
    admin,
    new RegExp(`^\\? Admin networks allowed to SSH \\(CIDRs, comma-separated\\) \\(${CTL_ADDRESS.replace(/\./g, '\\.')}/32\\)`, 'm'),
    'the controller as the hosts see it',
  );
  await p.answer('Admin networks allowed to SSH');
  await p.answer('Load-balancer software');
  const checked = await p.waitFor(/^\? What now\?/m, 120_000);
  assert.match(checked, /^ {2}Every check passed\.$/m, checked);
  await p.answer('What now?'); // write
  assert.equal(await p.exitCode(60_000), 0, p.history());

  const all = p.history();
  assert.doesNotMatch(all, /Interface on the load balancers/, 'never asked');
  const inv = await loadInventory(join(out, 'inventory.yaml'), { createSecrets: false });
  assert.deepEqual(inv.vip, { address: VIP.split('/')[0], prefix: 24, interface: 'eth0' });
  assert.deepEqual(inv.roles.firewall.adminCidrs, [`${CTL_ADDRESS}/32`]);
  assert.deepEqual(
    inv.hosts.map((h) => h.address),
    HOSTS.map((h) => h.address),
  );
  assert.equal(statSync(join(out, 'inventory.secrets.yaml')).mode & 0o777, 0o600);
});
