// End-to-end in the lab: `hasetup init --answers` with the lab's addresses (from the lab's controller
// namespace, no terminal), then `hasetup apply` of what it wrote, then the cluster answers on the
// VIP. The inventory keeps the lab's own secrets file (copied next to it before init, which keeps an
// existing one), so this apply changes nothing that other tests of the shared lab rely on.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CTL_ADDRESS, hostsFor, labConfig, repoRoot, VIP } from '../../../cli/lab/config.ts';

// the seed's five hosts (a lab with more web nodes or a replica has these too)
const HOSTS = hostsFor();
import { loadInventory } from '../../../inventory/load.ts';
import { ensureLab, labUnavailable, type Lab } from '../../helpers/lab.ts';
import { commandUnavailable, prerequisites } from '../../helpers/env.ts';

const HASETUP = join(repoRoot, 'bin', 'hasetup.js');
const skip = labUnavailable() ?? commandUnavailable('curl');
const VIP_ADDRESS = VIP.split('/')[0];

let lab: Lab | undefined;
let dir = '';
before(async () => {
  if (skip) return;
  lab = await ensureLab({ inventory: join(labConfig().stateDir, 'inventory.yaml') });
  dir = mkdtempSync(join(tmpdir(), 'hasetup-e2e-init-'));
});
after(async () => {
  await lab?.release();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test("init --answers with the lab's addresses, apply, and the cluster answers on the VIP", async (t) => {
  if (!prerequisites(t, skip) || !lab) return;
  const labInv = await loadInventory(lab.inventory); // creates the lab's secrets file when it has none yet
  const key = labInv.hosts[0].ssh.privateKey;
  assert.ok(key, 'the lab inventory names its SSH key');
  const inventory = join(dir, 'inventory.yaml');
  copyFileSync(labInv.secrets.file, join(dir, 'inventory.secrets.yaml'));
  const byGroup = (g: string) => HOSTS.filter((h) => h.group === g).map((h) => `${h.name}=${h.address}`);
  const answers = join(dir, 'answers.yaml');
  writeFileSync(
    answers,
    [
      `cluster: ${labInv.cluster}`,
      'hosts:',
      `  lb: [${byGroup('lb').join(', ')}]`,
      `  web: [${byGroup('web').join(', ')}]`,
      `  db: [${byGroup('db').join(', ')}]`,
      `ssh: { user: root, private_key: ${key} }`,
      `vip: ${VIP}`,
      '',
    ].join('\n'),
  );

  const init = await lab.exec([process.execPath, HASETUP, 'init', '--answers', answers, '-o', inventory], { timeoutMs: 120_000 });
  assert.equal(init.code, 0, `${init.stdout}\n${init.stderr}`);
  assert.match(
    init.stdout,
    /^LB interface: eth0 \(read from lb01 and lb02: it carries their addresses\)$/m,
    'read from the LBs, not given',
  );
  assert.match(init.stdout, /^Kept .*inventory\.secrets\.yaml \(mode 0600: its passwords are the cluster's\)$/m);
  assert.match(init.stdout, /^Recorded 5 host keys in .*\.hasetup\/known_hosts$/m, 'trusted on first use, where apply reads them');
  for (const h of HOSTS)
    assert.match(init.stdout, new RegExp(`^${h.name} +all +ok +\\d+ checks passed`, 'm'), `${h.name}: every check passed`);

  const inv = await loadInventory(inventory, { createSecrets: false });
  assert.deepEqual(inv.vip, { address: VIP_ADDRESS, prefix: 24, interface: 'eth0' });
  assert.deepEqual(inv.roles.firewall.adminCidrs, [`${CTL_ADDRESS}/32`], 'the controller as the hosts see it');
  assert.deepEqual(
    inv.hosts.map((h) => [h.name, h.address]),
    HOSTS.map((h) => [h.name, h.address]),
  );
  assert.equal(inv.secrets.mysqlRootPassword, labInv.secrets.mysqlRootPassword);
  assert.equal(statSync(join(dir, 'inventory.secrets.yaml')).mode & 0o777, 0o600);

  const apply = await lab.exec([process.execPath, HASETUP, 'apply', inventory], { timeoutMs: 900_000 });
  assert.equal(apply.code, 0, `${apply.stdout.slice(-4000)}\n${apply.stderr.slice(-2000)}`);
  assert.doesNotMatch(apply.stdout + apply.stderr, new RegExp(inv.secrets.mysqlRootPassword), 'no secret printed');

  // the LB that wins VRRP takes the VIP within a few adverts: ask for up to 30 s
  let last = '';
  for (let i = 0; i < 30; i++) {
    const r = await lab.exec(['curl', '-sS', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '3', `http://${VIP_ADDRESS}/`], {
      timeoutMs: 10_000,
    });
    last = `${r.code} ${r.stdout} ${r.stderr}`.trim();
    if (r.code === 0 && r.stdout === '200') break;
    await sleep(1000);
  }
  assert.equal(last, '0 200', `http://${VIP_ADDRESS}/ from the controller`);
  const page = await lab.exec(['curl', '-sS', '--max-time', '3', `http://${VIP_ADDRESS}/`], { timeoutMs: 10_000 });
  assert.match(page.stdout, /served by web0[12]/);
  assert.ok(readFileSync(join(dir, '.hasetup/known_hosts'), 'utf8').trim().split('\n').length >= 5);
});
