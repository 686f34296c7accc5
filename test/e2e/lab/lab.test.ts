// The nspawn lab end to end, through the CLI: a cold `lab up` (fresh cache directory), SSH and
// systemd on every host, an offline apt install from the local repository, reachability only inside
// the lab, a second `up` that does nothing, `lab down` leaving nothing behind, a warm `up` from the
// cache, and a `lab up` that fails half-way and removes what it had started (and nothing else).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { prerequisites } from '../../helpers/env.ts';
import { labUnavailable } from '../../helpers/lab.ts';
import { labConfig } from '../../../cli/lab/config.ts';
import { labSsh, labDown } from '../../../cli/lab/lab.ts';
import { readState, type LabState } from '../../../cli/lab/state.ts';

const root = join(import.meta.dirname, '../../..');
const name = `e2e${process.pid}`;
const work = mkdtempSync(join(tmpdir(), 'hsl-e2e-'));
const env = {
  ...process.env,
  HASETUP_LAB_NAME: name,
  HASETUP_LAB_CACHE: join(work, 'cache'),
  HASETUP_LAB_STATE: join(work, 'state'),
};
const cfg = labConfig({ name, cacheDir: env.HASETUP_LAB_CACHE, stateDir: env.HASETUP_LAB_STATE });
const inventory = join(work, 'inventory.yaml');
const prefix = cfg.prefix;
const HOSTS = { lb01: '10.213.0.11', lb02: '10.213.0.12', web01: '10.213.0.21', web02: '10.213.0.22', db01: '10.213.0.31' };

function hasetup(...args: string[]): { code: number; out: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'cli/main.ts'), ...args], {
    cwd: root,
    env,
    encoding: 'utf8',
    timeout: 15 * 60_000,
  });
  const out = `${r.stdout}${r.stderr}`;
  return { code: r.status ?? 1, out };
}

const ourNetns = (): string[] =>
  spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .stdout.split('\n')
    .map((l) => l.split(' ')[0])
    .filter((n) => n.startsWith(prefix));

/** Cgroup directories named with the lab's prefix, in every hierarchy. */
function ourCgroups(): string[] {
  const out: string[] = [];
  for (const h of readdirSync('/sys/fs/cgroup', { withFileTypes: true })) {
    if (h.name.startsWith(prefix)) out.push(join('/sys/fs/cgroup', h.name));
    if (!h.isDirectory()) continue;
    try {
      for (const c of readdirSync(join('/sys/fs/cgroup', h.name))) if (c.startsWith(prefix)) out.push(join('/sys/fs/cgroup', h.name, c));
    } catch {}
  }
  return out;
}

/** Processes whose cgroup is one of the lab's, or whose command line names its state directory. */
function ourProcesses(): string[] {
  const out: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cg = readFileSync(`/proc/${pid}/cgroup`, 'utf8');
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (cg.includes(`/${prefix}`) || cmd.includes(cfg.stateDir)) out.push(`${pid} ${cmd}`);
    } catch {}
  }
  return out;
}

const ourMounts = (): string[] =>
  readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => l.includes(prefix) || l.includes(work));

/** The lab's processes, after giving this machine's init a moment to reap any orphan that exited. */
async function ourProcessesSettled(): Promise<string[]> {
  for (let i = 0; i < 50; i++) {
    const left = ourProcesses();
    if (left.length === 0) return left;
    await new Promise((r) => setTimeout(r, 200));
  }
  return ourProcesses();
}

async function assertNothingLeft(state: LabState | null): Promise<void> {
  assert.deepEqual(ourNetns(), [], 'no network namespace of the lab is left');
  assert.deepEqual(ourCgroups(), [], 'no cgroup of the lab is left');
  assert.deepEqual(await ourProcessesSettled(), [], 'no process of the lab is left');
  assert.deepEqual(ourMounts(), [], 'no mount of the lab is left');
  for (const l of state?.launchers ?? [])
    assert.equal(
      existsSync(`/proc/${l.pid}`) && readFileSync(`/proc/${l.pid}/cmdline`, 'utf8').includes('nspawn'),
      false,
      `launcher ${l.pid} is gone`,
    );
  assert.equal(existsSync(join(cfg.stateDir, 'hosts')), false, 'the overlays are removed');
  assert.equal(existsSync(join(cfg.stateDir, 'state.json')), false, 'the state file is removed');
}

test(
  'lab: cold up, SSH, systemd, offline apt, isolation, idempotent up, down leaves nothing, warm up, failed up cleans up',
  { timeout: 30 * 60_000 },
  async (t) => {
    if (!prerequisites(t, labUnavailable())) return;
    t.after(async () => {
      // whatever happened above, leave no lab behind
      await labDown(cfg).catch((err) => console.log(`# clean-up: ${(err as Error).message}`));
      spawnSync('ip', ['netns', 'delete', `${prefix}web02`]);
      rmSync(work, { recursive: true, force: true });
    });

    // cold: an empty cache directory
    const up = hasetup('lab', 'up', '--inventory', inventory);
    console.log(up.out.replace(/^/gm, '# '));
    assert.equal(up.code, 0, up.out);
    assert.match(up.out, /building the bookworm base image/);
    assert.match(up.out, /building the local apt repository/);
    const state = readState(cfg);
    assert.ok(state, 'state file written');

    // the inventory: the five hosts, the lab key, the controller's admin address, the VIP
    const inv = parse(readFileSync(inventory, 'utf8'));
    assert.deepEqual(
      [...inv.hosts.lb, ...inv.hosts.web, ...inv.hosts.db].map((h: { name: string; address: string }) => [h.name, h.address]),
      Object.entries(HOSTS),
    );
    assert.deepEqual(inv.vip, { address: '10.213.0.100/24', interface: 'eth0' });
    assert.deepEqual(inv.roles.firewall.admin_cidrs, ['10.213.0.10/32']);
    assert.ok(
      existsSync(inv.ssh.private_key.startsWith('/') ? inv.ssh.private_key : join(work, inv.ssh.private_key)),
      'the private key exists',
    );
    const { loadInventory } = await import('../../../inventory/load.ts');
    const loaded = await loadInventory(inventory);
    assert.deepEqual(
      loaded.hosts.map((h) => h.name),
      Object.keys(HOSTS),
    );

    // status: every host runs and sshd answers
    const status = hasetup('lab', 'status');
    assert.equal(status.code, 0, status.out);
    for (const [h, a] of Object.entries(HOSTS))
      assert.match(status.out, new RegExp(`^${h}\\s+${a.replace(/\./g, '\\.')}\\s+yes\\s+answers`, 'm'));

    // SSH to every host with the lab key and strict host key checking; each is its own machine
    const ids = new Set<string>();
    for (const [h, a] of Object.entries(HOSTS)) {
      const r = await labSsh(cfg, a, 'hostname; cat /etc/machine-id; ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub');
      assert.equal(r.code, 0, r.stderr);
      const [hostname, machineId, fingerprint] = r.stdout.trim().split('\n');
      assert.equal(hostname, h);
      ids.add(machineId);
      ids.add(fingerprint.split(' ')[1]);
    }
    assert.equal(ids.size, 10, 'machine ids and SSH host keys are all different');
    const viaCli = hasetup('lab', 'ssh', 'db01', '--', 'uname', '-n');
    assert.equal(viaCli.code, 0, viaCli.out);
    assert.equal(viaCli.out.trim(), 'db01');

    // systemd: running, or degraded with the reason printed
    for (const [h, a] of Object.entries(HOSTS)) {
      const r = await labSsh(cfg, a, 'systemctl is-system-running --wait');
      const st = r.stdout.trim();
      if (st === 'degraded') {
        const failed = await labSsh(cfg, a, 'systemctl --failed --no-legend --plain');
        console.log(`# ${h} is degraded: ${failed.stdout.trim()}`);
      }
      assert.ok(st === 'running' || st === 'degraded', `${h}: is-system-running says ${st}`);
    }

    // offline apt: the local repository is the only source, and a package installs from it
    const sources = await labSsh(cfg, HOSTS.web01, 'cat /etc/apt/sources.list; ls /etc/apt/sources.list.d | wc -l; ip route');
    assert.equal(sources.code, 0);
    assert.deepEqual(
      sources.stdout
        .trim()
        .split('\n')
        .map((l) => l.trim()),
      ['deb [trusted=yes] file:/srv/repo ./', '0', '10.213.0.0/24 dev eth0 proto kernel scope link src 10.213.0.21'],
    );
    const apt = await labSsh(
      cfg,
      HOSTS.web01,
      'DEBIAN_FRONTEND=noninteractive apt-get install -y -q curl 2>&1; curl --version | head -1; apt-cache policy curl',
    );
    assert.equal(apt.code, 0, apt.stdout);
    assert.match(apt.stdout, /^curl \d/m);
    assert.match(apt.stdout, /file:\/srv\/repo \.\/ Packages/);

    // reachability: host to host and from ctl inside the lab
    for (const [from, to] of [
      ['lb01', 'web02'],
      ['web01', 'db01'],
      ['db01', 'lb02'],
    ] as const) {
      const r = await labSsh(cfg, HOSTS[from], `ping -c1 -W2 ${HOSTS[to]}`);
      assert.equal(r.code, 0, `${from} reaches ${to}: ${r.stdout}${r.stderr}`);
    }
    const connect = `require('node:net').connect(22, process.argv[1]).on('data', (d) => { console.log(String(d).split('-')[0]); process.exit(0); }).on('error', (e) => { console.log(e.message); process.exit(1); })`;
    const fromCtl = hasetup('lab', 'exec', '--', process.execPath, '-e', connect, HOSTS.lb02);
    assert.equal(fromCtl.code, 0, fromCtl.out);
    assert.equal(fromCtl.out.trim(), 'SSH', 'ctl reaches the sshd of lb02');
    // ... and nothing else: no route from a host (or from ctl) to any address of this machine
    const machineAddrs = Object.values(networkInterfaces())
      .flat()
      .filter((i) => i && i.family === 'IPv4' && !i.internal)
      .map((i) => i!.address)
      // (the Vagrant lab's host side may hold an address of the same plan: inside the lab that one is ctl's)
      .filter((a) => !a.startsWith('10.213.0.'));
    for (const addr of [...machineAddrs, '203.0.113.1']) {
      const r = await labSsh(cfg, HOSTS.lb01, `ip route get ${addr}`);
      assert.notEqual(r.code, 0, `lb01 has no route to ${addr}`);
      assert.match(r.stderr, /unreachable/i);
      const c = hasetup('lab', 'exec', '--', 'ip', 'route', 'get', addr);
      assert.notEqual(c.code, 0, `ctl has no route to ${addr}`);
    }
    // the lab's links live only in its namespaces: none in the machine's own
    const links = spawnSync('ip', ['-o', 'link'], { encoding: 'utf8' }).stdout;
    for (const h of ['ctl', ...Object.keys(HOSTS)]) assert.doesNotMatch(links, new RegExp(`v-${h}\\b`));
    const brLinks = spawnSync('ip', ['-n', `${prefix}br`, '-o', 'link'], { encoding: 'utf8' }).stdout;
    assert.deepEqual(
      brLinks
        .split('\n')
        .filter(Boolean)
        .map((l) => l.split(':')[1].trim().split('@')[0])
        .sort(),
      ['br0', 'lo', 'v-ctl', 'v-db01', 'v-lb01', 'v-lb02', 'v-web01', 'v-web02'],
    );

    // a second `up` while up does nothing
    const again = hasetup('lab', 'up', '--inventory', inventory);
    assert.equal(again.code, 0, again.out);
    assert.match(again.out, /already up/);
    assert.deepEqual(readState(cfg)?.launchers, state.launchers, 'the same hosts keep running');

    // down: nothing of the lab is left
    const down = hasetup('lab', 'down');
    assert.equal(down.code, 0, down.out);
    await assertNothingLeft(state);
    const st2 = hasetup('lab', 'status');
    assert.equal(st2.code, 1);
    assert.match(st2.out, /is down/);

    // warm: from the cache, no build
    const warm = hasetup('lab', 'up', '--inventory', inventory);
    assert.equal(warm.code, 0, warm.out);
    assert.doesNotMatch(warm.out, /building/);
    const r = await labSsh(cfg, HOSTS.db01, 'hostname');
    assert.equal(r.stdout.trim(), 'db01');
    const warmState = readState(cfg);
    assert.equal(hasetup('lab', 'down').code, 0);
    await assertNothingLeft(warmState);

    // a `lab up` that fails half-way (a namespace it wants is taken) removes what it had started,
    // and leaves the namespace it did not create
    assert.equal(spawnSync('ip', ['netns', 'add', `${prefix}web02`]).status, 0);
    const failed = hasetup('lab', 'up', '--inventory', inventory);
    assert.notEqual(failed.code, 0);
    assert.match(failed.out, /already exists/);
    assert.match(failed.out, /cleaning up/);
    assert.deepEqual(ourNetns(), [`${prefix}web02`], 'only the namespace the lab did not create is left');
    assert.deepEqual(ourCgroups(), []);
    assert.deepEqual(await ourProcessesSettled(), []);
    assert.equal(existsSync(join(cfg.stateDir, 'state.json')), false);
  },
);
