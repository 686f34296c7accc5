// The Vagrant lab really boots: the repository's Vagrantfile with the locally built box on libvirt
// (QEMU emulation when KVM does not work), SSH from this machine to all five VMs over the lab's
// private network, each VM reaching the others there; the common role applies (packages from the
// lab's repository, served from this machine) and a second apply changes nothing; then `down` leaves
// no domain, network or process behind. Slow (minutes): one test, cleaning up in `finally` whatever
// happens. The whole cluster on the VMs, answering on its VIP, is bench/vagrant/run.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { parse } from 'yaml';
import { prerequisites, rootUnavailable, commandUnavailable } from '../../helpers/env.ts';
import { vagrantUp, vagrantDown, vagrantStatus, readPlan, KNOWN_HOSTS_REL, consoleLogFile } from '../../../cli/lab/vagrant.ts';
import { repoRoot } from '../../../cli/lab/config.ts';
import { applyTwice } from '../../../harness/vagrant-apply.ts';

interface InvHost {
  name: string;
  address: string;
  ssh?: { host?: string; port?: number; private_key?: string };
}

function vagrantLibvirtUnavailable(): string | null {
  const r = spawnSync('vagrant', ['plugin', 'list'], { encoding: 'utf8', env: { ...process.env, VAGRANT_CHECKPOINT_DISABLE: '1' } });
  return r.status === 0 && /vagrant-libvirt/.test(r.stdout) ? null : 'needs the vagrant-libvirt plugin (Debian: vagrant-libvirt)';
}

function lines(cmd: string, args: string[]): string[] {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return (r.stdout ?? '')
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
}

const virshList = (what: string[]) => lines('virsh', ['-q', '-c', 'qemu:///system', ...what]);

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test(
  'vagrant lab: up with the local box, SSH to all five over the lab network, down leaves nothing',
  { timeout: 45 * 60_000 },
  async (t) => {
    const ready = prerequisites(
      t,
      rootUnavailable(),
      commandUnavailable(
        'vagrant',
        'virsh',
        'libvirtd',
        'virtlogd',
        'qemu-system-x86_64',
        'qemu-img',
        'mmdebstrap',
        'mke2fs',
        'dnsmasq',
        'ssh',
      ),
      vagrantLibvirtUnavailable(),
    );
    if (!ready) return;
    const root = repoRoot;
    const plan = readPlan(root);
    const stateFile = join(root, '.vagrant', 'hasetup-state.json');
    assert.ok(!existsSync(stateFile), 'a Vagrant lab is already up in this checkout (hasetup lab down --provider vagrant)');
    const dir = mkdtempSync(join(tmpdir(), 'hasetup-vagrant-e2e-'));
    // The inventory `up` writes: what `hasetup apply` (e.g. the common role) takes.
    const inventory = join(dir, 'inventory.yaml');
    const t0 = Date.now();
    let started: { name: string; pid: number }[];
    try {
      await vagrantUp({ inventoryOut: inventory });
      const upSeconds = (Date.now() - t0) / 1000;
      console.log(`# vagrant lab up: ${upSeconds.toFixed(0)} s`);
      // Every VM's serial console is copied to a file (read when an `up` fails): it holds the boot.
      for (const h of plan.hosts) {
        const console_ = readFileSync(consoleLogFile(plan, h.name), 'utf8');
        assert.match(console_, /Linux version|login:/, `${h.name}'s console log shows its boot`);
      }
      started = (JSON.parse(readFileSync(stateFile, 'utf8')) as { startedDaemons: { name: string; pid: number }[] }).startedDaemons;

      // The inventory: every host of the plan, user vagrant with sudo, SSH inside 10.213.x only.
      const inv = parse(readFileSync(inventory, 'utf8')) as {
        ssh: { user: string; become: boolean; known_hosts: string };
        vip: { address: string; interface: string };
        hosts: Record<string, InvHost[]>;
        roles: { firewall: { admin_cidrs: string[] } };
      };
      assert.equal(inv.ssh.user, 'vagrant');
      assert.equal(inv.ssh.become, true);
      assert.equal(inv.ssh.known_hosts, KNOWN_HOSTS_REL);
      assert.equal(inv.vip.address, plan.vip);
      const hosts = Object.values(inv.hosts).flat();
      assert.deepEqual(hosts.map((h) => h.name).sort(), plan.hosts.map((h) => h.name).sort());
      assert.ok(inv.roles.firewall.admin_cidrs.length > 0);
      const knownHosts = resolve(dirname(inventory), inv.ssh.known_hosts);

      for (const h of hosts) {
        const planned = plan.hosts.find((p) => p.name === h.name)!;
        assert.equal(h.address, planned.address);
        const sshHost = h.ssh?.host ?? h.address;
        const port = h.ssh?.port ?? 22;
        assert.match(sshHost, /^10\.213\.\d+\.\d+$/, `${h.name}: SSH goes to ${sshHost}`);
        const key = h.ssh?.private_key ?? '';
        assert.ok(isAbsolute(key) && existsSync(key), `${h.name}: private key ${key}`);
        // Strict host key checking against the known_hosts `up` wrote: the VM is who it says it is.
        const peers = plan.hosts.filter((p) => p.name !== h.name).map((p) => p.address);
        const r = spawnSync(
          'ssh',
          [
            '-i',
            key,
            '-p',
            String(port),
            '-o',
            'BatchMode=yes',
            '-o',
            'IdentitiesOnly=yes',
            '-o',
            'StrictHostKeyChecking=yes',
            '-o',
            `UserKnownHostsFile=${knownHosts}`,
            '-o',
            'ConnectTimeout=20',
            `vagrant@${sshHost}`,
            `hostname; sudo -n id -u; ip -o -4 addr show to ${h.address} | wc -l; for a in ${peers.join(' ')}; do ping -c 1 -W 5 $a >/dev/null && echo ok $a || echo no $a; done`,
          ],
          { encoding: 'utf8', timeout: 120_000 },
        );
        assert.equal(r.status, 0, `${h.name}: ssh failed: ${r.stderr}`);
        const out = r.stdout.trim().split('\n');
        assert.equal(out[0], h.name, `${h.name}: hostname`);
        assert.equal(out[1], '0', `${h.name}: sudo -n`);
        assert.equal(out[2], '1', `${h.name}: has ${h.address}`);
        assert.deepEqual(
          out.slice(3),
          peers.map((a) => `ok ${a}`),
          `${h.name}: reaches the other hosts on the lab network`,
        );
      }

      // `hasetup apply` of the common role on the five VMs (packages from the lab's repository, served
      // from this machine, sudo as the vagrant user, the host keys `up` recorded): nothing fails, a
      // second run changes nothing. The whole cluster on the VMs (ten minutes and more under QEMU
      // emulation, its VIP answering from each web node) is bench/vagrant/run.ts.
      applyTwice(
        inventory,
        plan.hosts.map((h) => h.name),
        ['--tags', 'common'],
      );

      // status: every VM running, and sshd answering on its lab address.
      const printed: string[] = [];
      const log = console.log;
      console.log = (...a: unknown[]) => {
        printed.push(a.join(' '));
      };
      try {
        await vagrantStatus();
      } finally {
        console.log = log;
      }
      for (const h of plan.hosts) {
        const line = printed.find((l) => l.startsWith(`${h.name} `));
        assert.ok(line && /\brunning\b/.test(line) && /\banswers$/.test(line), `status for ${h.name}: ${line}`);
      }
      assert.ok(printed[0]?.startsWith('vagrant lab: up'), printed[0]);
      assert.notEqual(process.exitCode, 1);

      // A second `up` while up changes nothing but writes the same inventory again.
      const again = join(dir, 'again', 'inventory.yaml');
      await vagrantUp({ inventoryOut: again });
      assert.deepEqual(parse(readFileSync(again, 'utf8')), inv);
      assert.equal(readFileSync(join(dir, 'again', KNOWN_HOSTS_REL), 'utf8'), readFileSync(knownHosts, 'utf8'));
    } finally {
      const t1 = Date.now();
      try {
        await vagrantDown();
      } finally {
        console.log(`# vagrant lab down: ${((Date.now() - t1) / 1000).toFixed(0)} s; total ${((Date.now() - t0) / 1000).toFixed(0)} s`);
        rmSync(dir, { recursive: true, force: true });
      }
    }

    // Nothing left: no domain, no network, no daemon hasetup started, no QEMU of the lab, no state.
    const names = plan.hosts.map((h) => `${plan.domain_prefix}${h.name}`);
    if (started.length === 0 || lines('virsh', ['-c', 'qemu:///system', 'uri']).length > 0) {
      assert.deepEqual(
        virshList(['list', '--all', '--name']).filter((d) => names.includes(d)),
        [],
      );
      assert.deepEqual(
        virshList(['net-list', '--all', '--name']).filter((n) => n === plan.private_network.name || n === plan.management_network.name),
        [],
      );
    }
    for (const d of started) assert.ok(!pidAlive(d.pid), `${d.name} (pid ${d.pid}) still runs`);
    const qemus = lines('ps', ['-eo', 'args']).filter((a) => a.includes('qemu-system') && names.some((n) => a.includes(`guest=${n},`)));
    assert.deepEqual(qemus, []);
    assert.ok(!existsSync(stateFile));
    assert.ok(!existsSync(join(root, '.vagrant', 'hasetup.lock')));
  },
);
