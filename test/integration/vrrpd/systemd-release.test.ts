// A dead VRRP daemon takes its VIP with it, under a real systemd: the ExecStopPost that the runtime role
// renders (hasetup-vrrpd.service, and keepalived.service's drop-in) removes the VIP from the daemon's
// network namespace after a SIGKILL, the unit starts again, and a clean stop with the VIP already gone
// does not fail the unit. The systemd is a throwaway manager (`systemd --user`, as root) in a private
// mount namespace of its own, so that it runs beside whatever manages this machine and leaves nothing.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { prerequisites, rootUnavailable, commandUnavailable } from '../../helpers/env.ts';
import { fixtureInventory } from '../../helpers/fixture-role.ts';
import { Topology, vrrpConf, waitFor, sleep, sh, BUNDLE } from '../../../harness/netns.ts';
import runtime from '../../../roles/runtime/index.ts';
import { roleContext } from '../../../cli/engine/role.ts';
import type { Facts } from '../../../cli/engine/facts.ts';
import type { Host, Inventory } from '../../../inventory/types.ts';

const VIP = '10.77.0.100';
const SYSTEMD = '/lib/systemd/systemd';
const gates = () => [
  rootUnavailable(),
  commandUnavailable('ip', 'unshare', 'nsenter', 'systemctl'),
  existsSync(SYSTEMD) ? null : `needs ${SYSTEMD}`,
];

/** A systemd manager of our own: `systemd --user` run as root in a private mount namespace. */
class Manager {
  readonly dir = mkdtempSync(join(tmpdir(), 'hasetup-sd-'));
  readonly configDir = join(this.dir, 'home/.config/systemd/user');
  /** Where a distribution's units are (below the runtime mask in precedence, as /lib/systemd/system is). */
  readonly dataDir = join(this.dir, 'home/.local/share/systemd/user');
  out = '';
  private child: ChildProcess | null = null;
  private exited = false;
  private readonly env: Record<string, string>;

  constructor() {
    this.env = {
      XDG_RUNTIME_DIR: join(this.dir, 'xdg'),
      HOME: join(this.dir, 'home'),
      XDG_CONFIG_HOME: join(this.dir, 'home/.config'),
      XDG_DATA_HOME: join(this.dir, 'home/.local/share'),
    };
    for (const d of [this.env.XDG_RUNTIME_DIR, this.configDir, this.dataDir]) mkdirSync(d, { recursive: true, mode: 0o700 });
    // it starts nothing of the machine's user units: only this target
    writeFileSync(join(this.configDir, 'hasetup-test.target'), '[Unit]\nDefaultDependencies=no\n');
  }

  async start(): Promise<void> {
    // "booted with systemd" as the manager checks it, in its own mount namespace only
    const script = `mount -t tmpfs tmpfs /run/systemd && mkdir -p /run/systemd/system && exec ${SYSTEMD} --user --unit=hasetup-test.target --log-target=console --log-level=notice`;
    this.child = spawn('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script], {
      env: { ...process.env, ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child.stdout!.on('data', (d: Buffer) => (this.out += d.toString()));
    this.child.stderr!.on('data', (d: Buffer) => (this.out += d.toString()));
    this.child.on('exit', () => (this.exited = true));
    const up = await waitFor(() => !this.exited && this.systemctl(['show', '-p', 'Version', '--value'], false).trim() !== '', 15_000, 100);
    if (up === null) throw new Error(`the systemd manager did not come up: ${this.out}`);
  }

  systemctl(args: string[], check = true): string {
    const env = Object.entries(this.env).map(([k, v]) => `${k}=${v}`);
    const r = spawnSync('nsenter', ['-m', '-t', String(this.child!.pid), 'env', ...env, 'systemctl', '--user', ...args], {
      encoding: 'utf8',
      timeout: 15_000,
    });
    if (check && r.status !== 0) throw new Error(`systemctl ${args.join(' ')}: ${r.stderr || r.error}\n${this.out}`);
    return r.stdout ?? '';
  }

  prop(unit: string, name: string): string {
    return this.systemctl(['show', '-p', name, '--value', unit]).trim();
  }

  async stop(): Promise<void> {
    if (this.child && !this.exited) {
      this.child.kill('SIGTERM');
      if ((await waitFor(() => this.exited, 10_000, 50)) === null) this.child.kill('SIGKILL');
      await waitFor(() => this.exited, 5000, 50);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

const facts = { hostname: 'lb01', arch: 'x86_64', memoryMb: 1024, container: true, records: {} } as unknown as Facts;

/** What the runtime role writes to `task` for an LB whose VIP is VIP/24 on eth0. */
function rendered(engine: 'bundled' | 'haproxy', task: string): string {
  const inv: Inventory = fixtureInventory([], { runtime: engine });
  const lb: Host = {
    name: 'lb01',
    address: '10.77.0.1',
    group: 'lb',
    priority: 150,
    ssh: { host: '10.77.0.1', user: 'root', port: 22, become: false, connectTimeout: 5 },
  };
  inv.hosts = [lb];
  inv.vip = { address: VIP, prefix: 24, interface: 'eth0' };
  const t = runtime.tasks(roleContext(runtime, lb, inv, facts)).find((x) => x.name === task);
  assert.ok(t, task);
  const p = t.op.plan('absent', { facts, earlierChange: false });
  assert.ok(p.changed && p.stdin !== undefined);
  return p.stdin.toString();
}

const lines = (unit: string, ...keys: string[]) => unit.split('\n').filter((l) => keys.some((k) => l.startsWith(`${k}=`)));

async function setup(t: TestContext): Promise<{ lan: Topology; sd: Manager; ns: string } | null> {
  if (!prerequisites(t, ...gates())) return null;
  const lan = Topology.lan(1);
  const sd = new Manager();
  // the manager goes first (it stops its units), then the namespace and what is left in it
  t.after(async () => {
    await sd.stop();
    lan.cleanup();
  });
  await sd.start();
  return { lan, sd, ns: lan.hosts[0].ns };
}

const holds = (lan: Topology) => lan.holders(VIP).includes(0);

test("hasetup-vrrpd.service's ExecStopPost under systemd: the daemon killed with SIGKILL, the VIP leaves at once; restarted, it takes it again; a clean stop does not fail the unit", async (t) => {
  const s = await setup(t);
  if (!s) return;
  const { lan, sd, ns } = s;
  const release = lines(rendered('bundled', 'unit hasetup-vrrpd'), 'ExecStopPost', 'KillSignal', 'Restart', 'RestartSec');
  assert.equal(release.filter((l) => l.startsWith('ExecStopPost=')).length, 1, release.join('\n'));
  const cfg = lan.file('vrrpd.conf', vrrpConf({ priority: 150, version: 3, advertInt: 0.2 }));
  const unit = `hasetup-vrrpd-t${process.pid}.service`;
  writeFileSync(
    join(sd.configDir, unit),
    [
      '[Service]',
      `ExecStart=${process.execPath} ${BUNDLE} -f ${cfg} -s ${join(lan.dir, 'status.json')}`,
      `NetworkNamespacePath=/run/netns/${ns}`,
      ...release,
      '',
    ].join('\n'),
  );
  sd.systemctl(['daemon-reload']);
  sd.systemctl(['start', unit]);
  assert.notEqual(await waitFor(() => holds(lan), 10_000, 20), null, `the daemon never took the VIP: ${sd.out}`);
  const pid = sd.prop(unit, 'MainPID');

  sd.systemctl(['kill', '-s', 'SIGKILL', unit]);
  // under 1 s: before Restart= (RestartSec=1) could start a new daemon, which would remove it itself
  const left = await waitFor(() => !holds(lan), 900, 5);
  assert.notEqual(left, null, `the VIP stayed after SIGKILL: ${sd.out}`);
  console.log(`# hasetup-vrrpd killed (SIGKILL): the VIP left ${left!.toFixed(0)} ms later (ExecStopPost)`);

  // Restart=on-failure: a new daemon, which (alone here) becomes master and takes the VIP again
  assert.notEqual(
    await waitFor(() => sd.prop(unit, 'ActiveState') === 'active' && sd.prop(unit, 'MainPID') !== pid, 10_000, 100),
    null,
    `not restarted: ${sd.out}`,
  );
  assert.notEqual(await waitFor(() => holds(lan), 10_000, 20), null, 'the restarted daemon did not take the VIP');

  // the graceful path: the daemon removes the VIP itself; the release after it finds nothing, harmlessly
  sd.systemctl(['stop', unit]);
  assert.equal(holds(lan), false);
  assert.equal(sd.prop(unit, 'ActiveState'), 'inactive');
  assert.equal(sd.prop(unit, 'Result'), 'success');
});

test("keepalived.service's drop-in under systemd: a VIP left behind goes before the start; SIGKILL (masked or not) takes the VIP with it; a clean stop does not fail the unit", async (t) => {
  const s = await setup(t);
  if (!s) return;
  const { lan, sd, ns } = s;
  const unit = `keepalived-t${process.pid}.service`;
  // the distribution's unit (here a stand-in that holds nothing), completed by the role's drop-in. The
  // namespace comes from a drop-in too: a masked unit loses its own file's settings but keeps its
  // drop-ins (the role's release among them), and the release must run where the VIP is
  writeFileSync(join(sd.dataDir, unit), '[Service]\nExecStart=/bin/sleep 600\n');
  mkdirSync(join(sd.configDir, `${unit}.d`));
  writeFileSync(join(sd.configDir, `${unit}.d`, 'hasetup.conf'), rendered('haproxy', 'keepalived drop-in (VIP released when it dies)'));
  writeFileSync(join(sd.configDir, `${unit}.d`, 'netns.conf'), `[Service]\nNetworkNamespacePath=/run/netns/${ns}\n`);
  const addVip = () => sh(['ip', '-n', ns, 'addr', 'add', `${VIP}/24`, 'dev', 'eth0']);
  sd.systemctl(['daemon-reload']);

  addVip(); // left behind by a keepalived that died
  sd.systemctl(['start', unit]);
  assert.equal(sd.prop(unit, 'ActiveState'), 'active');
  assert.equal(holds(lan), false, 'the VIP left behind is still there after the start');

  // killed as the failover test kills it: the unit masked first (it stays down)
  addVip(); // as keepalived does as master
  sd.systemctl(['mask', '--runtime', unit]);
  assert.equal(sd.prop(unit, 'LoadState'), 'masked');
  sd.systemctl(['kill', '-s', 'SIGKILL', unit]);
  const left = await waitFor(() => !holds(lan), 2000, 5);
  assert.notEqual(left, null, `the VIP stayed after SIGKILL: ${sd.out}`);
  console.log(`# keepalived (stand-in) killed (SIGKILL), its unit masked: the VIP left ${left!.toFixed(0)} ms later (ExecStopPost)`);
  await sleep(1500);
  assert.notEqual(sd.prop(unit, 'ActiveState'), 'active', 'a masked unit started again');
  sd.systemctl(['unmask', '--runtime', unit]);
  sd.systemctl(['reset-failed', unit], false);
  sd.systemctl(['start', unit]);

  // killed without the mask: the VIP leaves, and Restart=on-failure brings the unit back
  addVip();
  const pid = sd.prop(unit, 'MainPID');
  sd.systemctl(['kill', '-s', 'SIGKILL', unit]);
  assert.notEqual(await waitFor(() => !holds(lan), 2000, 5), null, `the VIP stayed after SIGKILL: ${sd.out}`);
  assert.notEqual(
    await waitFor(() => sd.prop(unit, 'ActiveState') === 'active' && sd.prop(unit, 'MainPID') !== pid, 10_000, 100),
    null,
    `not restarted: ${sd.out}`,
  );

  sd.systemctl(['stop', unit]);
  assert.equal(sd.prop(unit, 'ActiveState'), 'inactive');
  assert.equal(sd.prop(unit, 'Result'), 'success');
});

test("hasetup-vrrpd.service's release works as the daemon's unprivileged user, with the unit's capabilities, system call filter and address families", async (t) => {
  const s = await setup(t);
  if (!s) return;
  const { lan, sd, ns } = s;
  // the unit's [Service] as rendered, but for what starts the daemon, its user (nobody here) and the
  // file-system sandboxing that a manager of this kind cannot set up (they do not touch netlink)
  const service = rendered('bundled', 'unit hasetup-vrrpd').split('[Service]')[1].split('[Install]')[0];
  const skip =
    /^(ExecStart|ExecStartPre|ExecReload|User|Group|RuntimeDirectory\w*|ProtectSystem|ProtectHome|PrivateTmp|PrivateDevices|ProtectKernel\w*|ProtectControlGroups|ProtectProc|ProtectClock|ProtectHostname)=/;
  const kept = service.split('\n').filter((l) => /^[A-Z]\w*=/.test(l) && !skip.test(l));
  for (const k of [
    'ExecStopPost',
    'AmbientCapabilities',
    'CapabilityBoundingSet',
    'NoNewPrivileges',
    'SystemCallFilter',
    'RestrictAddressFamilies',
  ])
    assert.ok(
      kept.some((l) => l.startsWith(`${k}=`)),
      `${k} in the unit`,
    );
  const unit = `hasetup-vrrpd-user-t${process.pid}.service`;
  writeFileSync(
    join(sd.configDir, unit),
    ['[Service]', 'ExecStart=/bin/sleep 600', 'User=nobody', 'Group=nogroup', ...kept, ''].join('\n'),
  );
  mkdirSync(join(sd.configDir, `${unit}.d`));
  writeFileSync(join(sd.configDir, `${unit}.d`, 'netns.conf'), `[Service]\nNetworkNamespacePath=/run/netns/${ns}\n`);
  sd.systemctl(['daemon-reload']);
  sd.systemctl(['start', unit]);
  assert.notEqual(await waitFor(() => sd.prop(unit, 'ActiveState') === 'active', 5000, 50), null, sd.out);
  sh(['ip', '-n', ns, 'addr', 'add', `${VIP}/24`, 'dev', 'eth0']);
  sd.systemctl(['kill', '-s', 'SIGKILL', unit]);
  assert.notEqual(await waitFor(() => !holds(lan), 2000, 5), null, `the VIP stayed after SIGKILL: ${sd.out}`);
  sd.systemctl(['stop', unit]);
});
