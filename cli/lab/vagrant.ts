// The Vagrant lab: the five hosts of the cluster as virtual machines from the repository's
// Vagrantfile (lab/vagrant/hosts.json holds the plan both read). With libvirt (the default here),
// a Debian bookworm box is built locally (lab/vagrant/build-box.sh) when no other box is named,
// libvirtd and virtlogd are started when they are not running (and stopped again by `down`), and
// `up` writes an inventory for `hasetup apply` from what `vagrant ssh-config` reports.
import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  writeFileSync,
  rmSync,
  copyFileSync,
  chmodSync,
  chownSync,
  statSync,
  openSync,
  closeSync,
  constants as fsc,
} from 'node:fs';
import { connect } from 'node:net';
import { homedir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { createHash } from 'node:crypto';
import { stringify } from 'yaml';
import { UserError } from '../errors.ts';
import { pointVmsAtRepo, serveRepo } from './vagrant-repo.ts';
import { repoRoot } from './config.ts';
import { commandExists, run as runCommand, sleep, type RunResult } from './proc.ts';

export interface VagrantPlanHost {
  name: string;
  group: 'lb' | 'web' | 'db';
  address: string;
  memory: number;
  priority?: number;
  server_id?: number;
}

export interface VagrantPlan {
  private_network: { name: string; host_ip: string; netmask: string };
  management_network: { name: string; address: string };
  vip: string;
  domain_prefix: string;
  local_box: string;
  default_box: string;
  hosts: VagrantPlanHost[];
}

/** What `up` remembers for `down` and `status` (in .vagrant/hasetup-state.json). */
interface LabState {
  provider: string;
  box: string;
  driver?: string;
  kernelDir?: string;
  startedDaemons: { name: string; pid: number }[];
  /** /dev/kvm's owner and mode before `up` opened it to the kvm group (restored by `down`). */
  kvmDevice?: { uid: number; gid: number; mode: number };
  /** Runtime folders that did not exist before the daemons hasetup started (removed after them). */
  createdRunDirs?: string[];
  createdPool?: string;
}

export function readPlan(root = repoRoot): VagrantPlan {
  return JSON.parse(readFileSync(join(root, 'lab', 'vagrant', 'hosts.json'), 'utf8')) as VagrantPlan;
}

/** Where the local box and its build live: $HASETUP_LAB_CACHE/vagrant or ~/.cache/hasetup/vagrant. */
export function vagrantCacheDir(): string {
  const base = process.env.HASETUP_LAB_CACHE || join(homedir(), '.cache', 'hasetup');
  return join(base, 'vagrant');
}

const LIBVIRT_URI = 'qemu:///system';
/** Where kernel and initrd of the local box are copied so that the libvirt-qemu user can read them. */
const KERNEL_DIR = '/var/lib/libvirt/boot/hasetup-vagrant';

function stateFile(root: string): string {
  return join(
    process.env.VAGRANT_DOTFILE_PATH ? resolve(root, process.env.VAGRANT_DOTFILE_PATH) : join(root, '.vagrant'),
    'hasetup-state.json',
  );
}

function readState(root: string): LabState | null {
  try {
    return JSON.parse(readFileSync(stateFile(root), 'utf8')) as LabState;
  } catch {
    return null;
  }
}

function writeState(root: string, st: LabState): void {
  mkdirSync(dirname(stateFile(root)), { recursive: true });
  writeFileSync(stateFile(root), JSON.stringify(st, null, 2) + '\n');
}

/** Shows a child's output on our stderr, without Vagrant's in-place progress counters. */
function showOutput(d: string): void {
  // eslint-disable-next-line no-control-regex
  const text = d.replace(/\u001b\[K/g, '').replace(/Progress: \d+%\r?/g, '');
  if (text.trim()) process.stderr.write(text);
}

/**
 * Runs a command in its own process group; with `timeoutMs`, the whole group is terminated when
 * it takes longer (a paused libvirt domain makes `vagrant up` wait forever). `show` streams its
 * output to ours (stderr) as well as capturing it.
 */
const run = (
  cmd: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number; show?: boolean; input?: string } = {},
): Promise<RunResult> =>
  runCommand(cmd, args, {
    env: opts.env,
    cwd: opts.cwd,
    timeoutMs: opts.timeoutMs,
    input: opts.input ?? '',
    group: true,
    onOutput: opts.show ? showOutput : undefined,
  });

async function must(cmd: string, args: string[], opts: Parameters<typeof run>[2] = {}): Promise<string> {
  const r = await run(cmd, args, opts);
  if (r.timedOut) throw new UserError(`${cmd} ${args.join(' ')}: timed out after ${Math.round((opts.timeoutMs ?? 0) / 1000)} s`);
  if (r.code !== 0)
    throw new UserError(
      `${cmd} ${args.join(' ')} failed (exit ${r.code}):\n${(r.stderr || r.stdout).trim().split('\n').slice(-15).join('\n')}`,
    );
  return r.stdout;
}

function virsh(args: string[], timeoutMs = 60_000): Promise<RunResult> {
  return run('virsh', ['-q', '-c', LIBVIRT_URI, ...args], { timeoutMs });
}

function provider(): string {
  return process.env.VAGRANT_DEFAULT_PROVIDER || 'libvirt';
}

/** The environment every vagrant command of the lab runs with. */
function vagrantEnv(root: string, st: Pick<LabState, 'provider' | 'box' | 'driver' | 'kernelDir'>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    VAGRANT_CWD: root,
    VAGRANT_DEFAULT_PROVIDER: st.provider,
    VAGRANT_CHECKPOINT_DISABLE: '1',
    VAGRANT_BOX_UPDATE_CHECK_DISABLE: '1',
    HASETUP_VAGRANT_BOX: st.box,
  };
  if (st.driver) env.HASETUP_VAGRANT_DRIVER = st.driver;
  if (st.kernelDir) env.HASETUP_VAGRANT_KERNEL_DIR = st.kernelDir;
  return env;
}

// ---------------------------------------------------------------------------------------------
// libvirt: use the running daemon, or start libvirtd and virtlogd (no systemd needed) and track them

async function libvirtAnswers(): Promise<boolean> {
  if (!commandExists('virsh')) return false;
  const r = await virsh(['uri'], 15_000);
  return r.code === 0;
}

function ensureSystemAccounts(): void {
  const getent = (db: string, name: string) => spawnSync('getent', [db, name], { stdio: 'ignore' }).status === 0;
  for (const g of ['kvm', 'libvirt', 'libvirt-qemu']) {
    if (!getent('group', g)) spawnSync('groupadd', ['--system', g], { stdio: 'inherit' });
  }
  if (!getent('passwd', 'libvirt-qemu')) {
    spawnSync(
      'useradd',
      [
        '--system',
        '--no-create-home',
        '--home-dir',
        '/var/lib/libvirt',
        '--shell',
        '/usr/sbin/nologin',
        '-g',
        'libvirt-qemu',
        '-G',
        'kvm',
        'libvirt-qemu',
      ],
      { stdio: 'inherit' },
    );
  }
  if (!getent('passwd', 'libvirt-dnsmasq')) {
    spawnSync(
      'useradd',
      [
        '--system',
        '--no-create-home',
        '--home-dir',
        '/var/lib/libvirt/dnsmasq',
        '--shell',
        '/usr/sbin/nologin',
        '-g',
        'libvirt',
        'libvirt-dnsmasq',
      ],
      { stdio: 'inherit' },
    );
  }
}

/**
 * libvirt runs QEMU as libvirt-qemu (group kvm) and re-probes QEMU at every call while that user
 * cannot open a /dev/kvm the probe could: give /dev/kvm the usual Debian owner and mode (root:kvm
 * 0660) when it has not, and remember the old ones for `down`.
 */
function openKvmToGroup(st: LabState): void {
  let s;
  try {
    s = statSync('/dev/kvm');
  } catch {
    return;
  }
  const kvmGid = Number(spawnSync('getent', ['group', 'kvm'], { encoding: 'utf8' }).stdout.split(':')[2]);
  if (!Number.isInteger(kvmGid) || (s.gid === kvmGid && (s.mode & 0o060) === 0o060)) return;
  st.kvmDevice ??= { uid: s.uid, gid: s.gid, mode: s.mode & 0o7777 };
  chownSync('/dev/kvm', s.uid, kvmGid);
  chmodSync('/dev/kvm', (s.mode & 0o7777) | 0o060);
}

function restoreKvm(st: LabState): void {
  if (!st.kvmDevice) return;
  try {
    chownSync('/dev/kvm', st.kvmDevice.uid, st.kvmDevice.gid);
    chmodSync('/dev/kvm', st.kvmDevice.mode);
  } catch {}
  st.kvmDevice = undefined;
}

async function startDaemon(name: string, pidFile: string): Promise<{ name: string; pid: number }> {
  rmSync(pidFile, { force: true });
  await must(name, ['--daemon', '--pid-file', pidFile], { timeoutMs: 30_000 });
  for (let i = 0; i < 100; i++) {
    if (existsSync(pidFile)) {
      const pid = Number(readFileSync(pidFile, 'utf8').trim());
      if (pid > 0) return { name, pid };
    }
    await sleep(100);
  }
  throw new UserError(`${name} did not write ${pidFile}`);
}

async function ensureLibvirt(st: LabState): Promise<void> {
  if (await libvirtAnswers()) return;
  for (const c of ['libvirtd', 'virtlogd', 'virsh', 'qemu-system-x86_64', 'qemu-img']) {
    if (!commandExists(c))
      throw new UserError(
        `the Vagrant lab with libvirt needs ${c} (Debian: libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients qemu-system-x86 qemu-utils)`,
      );
  }
  if (process.getuid?.() !== 0) throw new UserError('libvirtd is not running; start it (or run as root so that hasetup starts it)');
  ensureSystemAccounts();
  openKvmToGroup(st);
  mkdirSync('/var/log/libvirt/qemu', { recursive: true });
  mkdirSync('/var/lib/libvirt/images', { recursive: true });
  st.createdRunDirs = ['/run/libvirt'].filter((d) => !existsSync(d));
  st.startedDaemons.push(await startDaemon('virtlogd', '/run/hasetup-vagrant-virtlogd.pid'));
  st.startedDaemons.push(await startDaemon('libvirtd', '/run/hasetup-vagrant-libvirtd.pid'));
  for (let i = 0; i < 100; i++) {
    if (await libvirtAnswers()) return;
    await sleep(200);
  }
  throw new UserError('libvirtd was started but does not answer');
}

/**
 * The firewall chains a libvirtd we started made for its networks (LIBVIRT_*, in the filter, nat
 * and mangle tables), with the rules jumping to them: removed once that libvirtd is gone.
 */
function removeLibvirtChains(): void {
  for (const tool of ['iptables', 'ip6tables']) {
    if (!commandExists(tool)) continue;
    for (const table of ['filter', 'nat', 'mangle']) {
      const rules = spawnSync(tool, ['-w', '-t', table, '-S'], { encoding: 'utf8' }).stdout ?? '';
      for (const rule of rules.split('\n')) {
        const m = /^-A (\S+) (.*-j LIBVIRT_\S+.*)$/.exec(rule);
        if (m && !m[1].startsWith('LIBVIRT_')) spawnSync(tool, ['-w', '-t', table, '-D', m[1], ...m[2].split(' ')], { stdio: 'ignore' });
      }
      const chains = rules
        .split('\n')
        .map((l) => /^-N (LIBVIRT_\S+)$/.exec(l)?.[1])
        .filter((c): c is string => !!c);
      for (const c of chains) spawnSync(tool, ['-w', '-t', table, '-F', c], { stdio: 'ignore' });
      for (const c of chains) spawnSync(tool, ['-w', '-t', table, '-X', c], { stdio: 'ignore' });
    }
  }
}

async function stopDaemons(st: LabState): Promise<void> {
  // libvirtd first (it talks to virtlogd), each by the PID recorded when it was started.
  // The PID must still be that daemon (a PID recorded before a reboot may belong to another process).
  const isDaemon = (d: { name: string; pid: number }) => {
    try {
      return readFileSync(`/proc/${d.pid}/comm`, 'utf8').trim() === d.name;
    } catch {
      return false;
    }
  };
  for (const d of [...st.startedDaemons].reverse()) {
    if (!isDaemon(d)) continue;
    try {
      process.kill(d.pid, 'SIGTERM');
    } catch {}
    for (let i = 0; i < 100 && isDaemon(d); i++) await sleep(100);
    if (isDaemon(d))
      try {
        process.kill(d.pid, 'SIGKILL');
      } catch {}
  }
  if (st.startedDaemons.some((d) => d.name === 'libvirtd')) removeLibvirtChains();
  for (const d of st.startedDaemons) rmSync(`/run/hasetup-vagrant-${d.name}.pid`, { force: true });
  for (const d of st.createdRunDirs ?? []) rmSync(d, { recursive: true, force: true });
  st.startedDaemons = [];
  st.createdRunDirs = [];
}

// ---------------------------------------------------------------------------------------------
// The local box

async function boxInstalled(env: NodeJS.ProcessEnv, box: string): Promise<boolean> {
  const out = await must('vagrant', ['box', 'list', '--machine-readable'], { env, timeoutMs: 120_000 });
  return out.split('\n').some((l) => {
    const f = l.split(',');
    return f[2] === 'box-name' && f[3] === box;
  });
}

/** The box file built by lab/vagrant/build-box.sh, named after the recipe (a changed recipe builds anew). */
export function localBoxFile(root = repoRoot): string {
  const recipe = readFileSync(join(root, 'lab', 'vagrant', 'build-box.sh'));
  return join(vagrantCacheDir(), `hasetup-bookworm-${createHash('sha256').update(recipe).digest('hex').slice(0, 12)}.box`);
}

async function ensureLocalBox(root: string, env: NodeJS.ProcessEnv, box: string): Promise<string> {
  const file = localBoxFile(root);
  // Vagrant holds the box from this very file (its modification time is noted when it is added);
  // otherwise the box of the current recipe is built if need be, and added.
  const marker = `${file}.added`;
  const built = () => (existsSync(file) ? String(statSync(file).mtimeMs) : '');
  const current = built() !== '' && existsSync(marker) && readFileSync(marker, 'utf8').trim() === built();
  if (!current || !(await boxInstalled(env, box))) {
    if (!existsSync(file)) {
      console.error(`vagrant lab: building the local box ${box} (mmdebstrap, a minute or two)`);
      await must('bash', [join(root, 'lab', 'vagrant', 'build-box.sh'), dirname(file), basename(file)], {
        show: true,
        timeoutMs: 30 * 60_000,
      });
      // Boxes of older recipes are of no more use.
      for (const f of readdirSync(dirname(file))) {
        if (/^hasetup-bookworm(-[0-9a-f]+)?\.box(\.added)?$/.test(f) && !f.startsWith(basename(file)))
          rmSync(join(dirname(file), f), { force: true });
      }
    }
    await must('vagrant', ['box', 'add', '--force', '--name', box, file], { env, timeoutMs: 10 * 60_000 });
    writeFileSync(marker, built() + '\n');
  }
  // Kernel and initrd for direct kernel boot, where the libvirt-qemu user can read them.
  const vagrantHome = process.env.VAGRANT_HOME || join(homedir(), '.vagrant.d');
  const boxDir = join(vagrantHome, 'boxes', box.replace(/\//g, '-VAGRANTSLASH-'), '0', 'libvirt');
  for (const f of ['vmlinuz', 'initrd.img']) {
    if (!existsSync(join(boxDir, f)))
      throw new UserError(`the box ${box} has no ${f} in ${boxDir}: remove it (vagrant box remove ${box}) and ${file}, then try again`);
  }
  if (process.getuid?.() !== 0) {
    // Without root, the kernel is booted from the box folder: the user libvirt runs QEMU as must be
    // able to read it there.
    console.error(`vagrant lab: booting the kernel in ${boxDir} (it must be readable by libvirt's QEMU user)`);
    return boxDir;
  }
  mkdirSync(KERNEL_DIR, { recursive: true });
  chmodSync(KERNEL_DIR, 0o755);
  for (const f of ['vmlinuz', 'initrd.img']) {
    copyFileSync(join(boxDir, f), join(KERNEL_DIR, f));
    chmodSync(join(KERNEL_DIR, f), 0o644);
  }
  return KERNEL_DIR;
}

// ---------------------------------------------------------------------------------------------
// KVM or TCG

/**
 * "kvm" when hardware virtualisation works here, else "qemu" (TCG emulation). HASETUP_VAGRANT_DRIVER
 * decides when set. Otherwise the box's kernel is booted once with KVM (no disk, it must reach the
 * point where it looks for its root file system): some /dev/kvm cannot run a stock kernel.
 */
export async function detectDriver(kernel?: string): Promise<'kvm' | 'qemu'> {
  const forced = process.env.HASETUP_VAGRANT_DRIVER;
  if (forced === 'kvm' || forced === 'qemu') return forced;
  try {
    closeSync(openSync('/dev/kvm', fsc.O_RDWR));
  } catch {
    return 'qemu';
  }
  if (!kernel || !commandExists('qemu-system-x86_64')) return 'kvm';
  const r = await run(
    'qemu-system-x86_64',
    [
      '-accel',
      'kvm',
      '-cpu',
      'host',
      '-m',
      '256',
      '-nographic',
      '-no-reboot',
      '-nodefaults',
      '-serial',
      'stdio',
      '-kernel',
      kernel,
      '-append',
      'console=ttyS0 panic=-1 root=/dev/nonexistent',
    ],
    { timeoutMs: 30_000 },
  );
  return /VFS: Unable to mount root|Kernel panic/.test(r.stdout) ? 'kvm' : 'qemu';
}

// ---------------------------------------------------------------------------------------------
// ssh-config, reachability, inventory

interface SshEntry {
  host: string;
  hostName: string;
  user: string;
  port: number;
  identityFile: string;
}

export function parseSshConfig(text: string): SshEntry[] {
  const out: SshEntry[] = [];
  let cur: SshEntry | null = null;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    const m = /^(\S+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const key = m[1].toLowerCase();
    const val = m[2].replace(/^"(.*)"$/, '$1');
    if (key === 'host') {
      cur = { host: val, hostName: val, user: 'vagrant', port: 22, identityFile: '' };
      out.push(cur);
    } else if (cur) {
      if (key === 'hostname') cur.hostName = val;
      else if (key === 'user') cur.user = val;
      else if (key === 'port') cur.port = Number(val);
      else if (key === 'identityfile' && !cur.identityFile) cur.identityFile = val;
    }
  }
  return out;
}

/** True when a TCP connection to host:port succeeds within timeoutMs. */
export function tcpReachable(host: string, port: number, timeoutMs = 3000): Promise<boolean> {
  return new Promise((res) => {
    const s = connect({ host, port });
    const done = (ok: boolean) => {
      s.destroy();
      res(ok);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

/** True when `addr` is on a network this machine is attached to (no gateway on the way). */
function onLink(addr: string): boolean {
  const r = spawnSync('ip', ['-o', 'route', 'get', addr], { encoding: 'utf8' });
  return r.status === 0 && !/\bvia\b/.test(r.stdout) && !/^(local|broadcast)\b/.test(r.stdout);
}

/** This machine's source address towards `to` (what a guest sees as our address). */
function sourceAddress(to: string): string | null {
  const r = spawnSync('ip', ['-o', 'route', 'get', to], { encoding: 'utf8' });
  const m = /\bsrc (\d+\.\d+\.\d+\.\d+)/.exec(r.stdout ?? '');
  return m ? m[1] : null;
}

async function sshRun(configFile: string, host: string, command: string, timeoutMs = 60_000): Promise<string> {
  return must('ssh', ['-F', configFile, '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=10', host, command], { timeoutMs });
}

/** Where `up` writes the lab's known_hosts, relative to the inventory's folder. */
export const KNOWN_HOSTS_REL = '.hasetup/vagrant_known_hosts';

async function writeInventory(root: string, env: NodeJS.ProcessEnv, plan: VagrantPlan, inventoryOut: string): Promise<void> {
  const sshConfigText = await must('vagrant', ['ssh-config'], { env, timeoutMs: 180_000 });
  const entries = parseSshConfig(sshConfigText);
  const sshConfigFile = join(dirname(stateFile(root)), 'hasetup-ssh-config');
  writeFileSync(sshConfigFile, sshConfigText);
  const invDir = dirname(resolve(inventoryOut));
  const knownHostsFile = join(invDir, KNOWN_HOSTS_REL);
  mkdirSync(dirname(knownHostsFile), { recursive: true });
  const known: string[] = [];
  const admin = new Set<string>();
  const groups: Record<'lb' | 'web' | 'db', Record<string, unknown>[]> = { lb: [], web: [], db: [] };
  let vipInterface = '';
  for (const h of plan.hosts) {
    const e = entries.find((x) => x.host === h.name);
    if (!e) throw new UserError(`vagrant ssh-config has no entry for ${h.name}`);
    const direct = onLink(h.address) && (await tcpReachable(h.address, 22));
    const sshHost = direct ? h.address : e.hostName;
    const sshPort = direct ? 22 : e.port;
    // Host keys and interface names over the channel Vagrant set up with its own key.
    const out = await sshRun(sshConfigFile, h.name, `cat /etc/ssh/ssh_host_*_key.pub; echo ---; ip -o -4 addr show to ${h.address}`);
    const [keys, addrLine] = out.split('---\n');
    const hostPattern = sshPort === 22 ? sshHost : `[${sshHost}]:${sshPort}`;
    for (const k of keys.split('\n').filter((l) => l.trim())) {
      const [type, blob] = k.trim().split(/\s+/);
      known.push(`${hostPattern} ${type} ${blob}`);
    }
    const iface = /^\d+:\s+(\S+)/.exec(addrLine ?? '')?.[1];
    if (h.group === 'lb' && iface && !vipInterface) vipInterface = iface;
    // admin networks: this machine as the VM sees it on the path hasetup uses, and on Vagrant's own
    // channel (vagrant ssh, vagrant halt), so that the firewall role locks neither out
    for (const via of new Set([sshHost, e.hostName])) {
      const src = via === '127.0.0.1' ? '10.0.2.2' : sourceAddress(via);
      if (src) admin.add(`${src}/32`);
    }
    const ssh: Record<string, unknown> = {
      private_key: e.identityFile,
      ...(sshHost !== h.address ? { host: sshHost } : {}),
      ...(sshPort !== 22 ? { port: sshPort } : {}),
    };
    const entry: Record<string, unknown> = { name: h.name, address: h.address };
    if (h.priority !== undefined) entry.priority = h.priority;
    if (h.server_id !== undefined) entry.server_id = h.server_id;
    entry.ssh = ssh;
    groups[h.group].push(entry);
  }
  writeFileSync(knownHostsFile, known.join('\n') + '\n', { mode: 0o600 });
  const inv = {
    cluster: 'webfarm',
    vip: { address: plan.vip, interface: vipInterface || 'eth1' },
    vrrp: { router_id: 51 },
    ssh: { user: 'vagrant', port: 22, become: true, connect_timeout: 10, known_hosts: KNOWN_HOSTS_REL },
    hosts: groups,
    roles: { firewall: { admin_cidrs: [...admin] } },
  };
  const header =
    '# The Vagrant lab (written by `hasetup lab up --provider vagrant` from `vagrant ssh-config`).\n' +
    '# SSH goes to each VM as the vagrant user with the key Vagrant generated for it, with sudo.\n';
  mkdirSync(invDir, { recursive: true });
  writeFileSync(resolve(inventoryOut), header + stringify(inv, { flow: false }));
}

// ---------------------------------------------------------------------------------------------
// up / down / status

/** Seconds `vagrant up` may take before the lab is given up (HASETUP_VAGRANT_UP_TIMEOUT). */
function upTimeoutMs(): number {
  const s = Number(process.env.HASETUP_VAGRANT_UP_TIMEOUT || 1200);
  return (Number.isFinite(s) && s > 0 ? s : 1200) * 1000;
}

/**
 * One `up` or `down` at a time per checkout: a lock file in the Vagrant folder holding the PID of
 * the process at work (a lock whose process is gone is taken over).
 */
async function withLabLock<T>(fn: () => Promise<T>): Promise<T> {
  const root = repoRoot;
  const file = join(dirname(stateFile(root)), 'hasetup.lock');
  mkdirSync(dirname(file), { recursive: true });
  for (let attempt = 0; ; attempt++) {
    try {
      writeFileSync(file, `${process.pid}\n`, { flag: 'wx' });
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw e;
      const pid = Number(readFileSync(file, 'utf8').trim());
      let alive = false;
      try {
        alive = pid > 0 && (process.kill(pid, 0), true);
      } catch {}
      if (alive) throw new UserError(`another \`lab up\` or \`lab down\` of the Vagrant lab is running (pid ${pid}): wait for it to end`);
      rmSync(file, { force: true });
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(file, { force: true });
  }
}

/**
 * Brings the Vagrant lab up (see the top of this file) and writes its inventory to `inventoryOut`.
 * A failed `up` removes what it made; a second `up` while up only writes the inventory again.
 */
export function vagrantUp(opts: { inventoryOut: string }): Promise<void> {
  return withLabLock(() => up(opts));
}

/** Removes the Vagrant lab: its VMs, networks, volumes, and the daemons `up` started. */
export function vagrantDown(): Promise<void> {
  return withLabLock(() => down());
}

async function up(opts: { inventoryOut: string }): Promise<void> {
  if (!commandExists('vagrant')) throw new UserError('the Vagrant lab needs vagrant (Debian: vagrant, and vagrant-libvirt for libvirt)');
  const root = repoRoot;
  const plan = readPlan(root);
  const prov = provider();
  const prev = readState(root);
  if (prev) {
    // Already up (or half up): a no-op when every VM runs, apart from writing the inventory.
    const states = await machineStates(root, prev);
    if (plan.hosts.every((h) => states.get(h.name) === 'running')) {
      console.error('vagrant lab: already up (hasetup lab down --provider vagrant first to rebuild it)');
      await writeInventory(root, vagrantEnv(root, prev), plan, opts.inventoryOut);
      console.error(`vagrant lab: inventory written to ${opts.inventoryOut}`);
      return;
    }
  }
  const st: LabState = prev ?? {
    provider: prov,
    box: process.env.HASETUP_VAGRANT_BOX || (prov === 'libvirt' ? plan.local_box : plan.default_box),
    startedDaemons: [],
  };
  writeState(root, st);
  try {
    if (st.provider === 'libvirt') {
      await ensureLibvirt(st);
      writeState(root, st);
      const pools = await virsh(['pool-list', '--all', '--name']);
      if (
        !pools.stdout
          .split('\n')
          .map((s) => s.trim())
          .includes('default')
      )
        st.createdPool = 'default';
    }
    let env = vagrantEnv(root, st);
    if (st.provider === 'libvirt' && st.box === plan.local_box) {
      st.kernelDir = await ensureLocalBox(root, env, st.box);
      st.driver = await detectDriver(join(st.kernelDir, 'vmlinuz'));
    } else if (st.provider === 'libvirt') {
      st.driver = await detectDriver();
    }
    writeState(root, st);
    env = vagrantEnv(root, st);
    console.error(`vagrant lab: vagrant up (provider ${st.provider}, box ${st.box}${st.driver ? `, ${st.driver}` : ''})`);
    const vagrantUpCmd = async (names: string[]) => {
      const r = await run('vagrant', ['up', '--provider', st.provider, ...names], { env, show: true, timeoutMs: upTimeoutMs() });
      if (r.timedOut) throw new UserError(`vagrant up did not finish within ${upTimeoutMs() / 1000} s`);
      return r.code;
    };
    const code = await vagrantUpCmd([]);
    if (code !== 0) {
      // A VM that did not come up (seen under QEMU emulation on a busy machine) gets one more try
      // on its own: the others keep running.
      const failed = await hostsNotUp(root, st, plan);
      await printBootDiagnostics(st, plan, failed);
      if (failed.length === 0) throw new UserError(`vagrant up failed (exit ${code})`);
      console.error(
        `vagrant lab: vagrant up failed (exit ${code}); ${failed.join(', ')} did not come up: destroying ${failed.length > 1 ? 'them' : 'it'} and trying once more`,
      );
      const d = await run('vagrant', ['destroy', '-f', ...failed], { env, show: true, timeoutMs: 600_000 });
      if (d.code !== 0) throw new UserError(`vagrant destroy -f ${failed.join(' ')} failed (exit ${d.code})`);
      const again = await vagrantUpCmd(failed);
      if (again !== 0) {
        const still = await hostsNotUp(root, st, plan);
        await printBootDiagnostics(st, plan, still);
        throw new UserError(`vagrant up failed twice (exit ${again})${still.length ? `; not up: ${still.join(', ')}` : ''}`);
      }
    }
    await writeInventory(root, env, plan, opts.inventoryOut);
    // the VMs install from the lab's local repository, served from this machine on the lab network
    const srv = await serveRepo(plan.private_network.host_ip, (m) => console.error(m));
    st.startedDaemons.push({ name: srv.name, pid: srv.pid });
    writeState(root, st);
    await pointVmsAtRepo(opts.inventoryOut, srv.url);
    console.error(`vagrant lab: up; inventory written to ${opts.inventoryOut}`);
  } catch (err) {
    if (prev) {
      console.error(
        'vagrant lab: up failed; the lab was there before, so it is left as it is (hasetup lab down --provider vagrant removes it)',
      );
      throw err;
    }
    console.error('vagrant lab: up failed, cleaning up');
    await down().catch((e) => console.error(`vagrant lab: clean-up failed too: ${e instanceof Error ? e.message : e}`));
    throw err;
  }
}

async function down(): Promise<void> {
  const root = repoRoot;
  const plan = readPlan(root);
  const saved = readState(root);
  const st = saved ?? { provider: provider(), box: process.env.HASETUP_VAGRANT_BOX || plan.local_box, startedDaemons: [] };
  const problems: string[] = [];
  const libvirt = st.provider === 'libvirt';
  let libvirtUp = libvirt && (await libvirtAnswers());
  if (libvirt && !libvirtUp && saved) {
    // A lab whose libvirtd is gone (e.g. after a reboot): start one to remove the lab's domains.
    try {
      await ensureLibvirt(st);
      writeState(root, st);
      libvirtUp = true;
    } catch (e) {
      problems.push(`cannot start libvirtd to remove the VMs: ${e instanceof Error ? e.message : e}`);
    }
  }
  if (!libvirt || libvirtUp) {
    const r = await run('vagrant', ['destroy', '-f'], { env: vagrantEnv(root, st), show: true, timeoutMs: 600_000 });
    if (r.code !== 0) problems.push(`vagrant destroy -f failed (exit ${r.code}${r.timedOut ? ', timed out' : ''})`);
  }
  if (libvirtUp) {
    // Whatever vagrant left of ours: domains named <prefix><host>, the two networks, the box volume.
    const prefix = plan.domain_prefix;
    const doms = (await virsh(['list', '--all', '--name'])).stdout.split('\n').map((s) => s.trim());
    for (const d of doms) {
      if (!plan.hosts.some((h) => d === `${prefix}${h.name}`)) continue;
      await virsh(['destroy', d]);
      await virsh(['undefine', d, '--remove-all-storage']);
    }
    const nets = (await virsh(['net-list', '--all', '--name'])).stdout.split('\n').map((s) => s.trim());
    for (const n of [plan.private_network.name, plan.management_network.name]) {
      if (!nets.includes(n)) continue;
      await virsh(['net-destroy', n]);
      const u = await virsh(['net-undefine', n]);
      if (u.code !== 0) problems.push(`cannot remove the libvirt network ${n}: ${u.stderr.trim()}`);
    }
    // Disks of VMs a cut-short `up` created without a domain, and the box's base volume.
    const vols = (await virsh(['vol-list', 'default'])).stdout
      .split('\n')
      .map((l) => l.trim().split(/\s+/)[0])
      .filter(Boolean);
    const boxVol = st.box.replace(/\//g, '-VAGRANTSLASH-');
    for (const v of vols) {
      const vmDisk = plan.hosts.some((h) => v === `${prefix}${h.name}.img`);
      if (vmDisk || (st.box === plan.local_box && v.startsWith(boxVol))) await virsh(['vol-delete', '--pool', 'default', v]);
    }
    if (st.createdPool) {
      await virsh(['pool-destroy', st.createdPool]);
      await virsh(['pool-undefine', st.createdPool]);
    }
  }
  if (st.kernelDir === KERNEL_DIR) rmSync(st.kernelDir, { recursive: true, force: true });
  await stopDaemons(st);
  restoreKvm(st);
  rmSync(stateFile(root), { force: true });
  rmSync(join(dirname(stateFile(root)), 'hasetup-ssh-config'), { force: true });
  if (problems.length) throw new UserError(`vagrant lab down: ${problems.join('; ')}`);
  console.error('vagrant lab: down');
}

/** Where the Vagrantfile has libvirt copy a VM's serial console. */
export function consoleLogFile(plan: VagrantPlan, host: string): string {
  return `/var/log/libvirt/qemu/${plan.domain_prefix}${host}-console.log`;
}

/**
 * After a failed `up` (libvirt only): the DHCP leases of the management network and the end of each
 * VM's serial console, so that a VM that did not come up can be told from one that came up slowly.
 */
async function printBootDiagnostics(st: LabState, plan: VagrantPlan, hosts: string[]): Promise<void> {
  if (st.provider !== 'libvirt') return;
  const leases = await virsh(['net-dhcp-leases', plan.management_network.name], 10_000).catch(() => ({
    stdout: '',
    stderr: '(virsh failed)',
  }));
  console.error(`vagrant lab: DHCP leases on ${plan.management_network.name}:\n${(leases.stdout || leases.stderr).trimEnd()}`);
  for (const name of hosts) {
    const file = consoleLogFile(plan, name);
    let tail = '(no console log)';
    try {
      const lines = readFileSync(file, 'utf8')
        // eslint-disable-next-line no-control-regex
        .replace(/\r|\x1b\[[0-9;]*[A-Za-z]/g, '')
        .split('\n')
        .filter((l) => l.trim());
      tail = lines.slice(-15).join('\n') || '(empty)';
    } catch {}
    console.error(`vagrant lab: end of ${name}'s console (${file}):\n${tail}`);
  }
}

/**
 * The hosts that are not up: not running, or running without sshd answering on their lab address
 * (Vagrant configures that address over SSH, so a VM it never reached does not have it).
 */
async function hostsNotUp(root: string, st: LabState, plan: VagrantPlan): Promise<string[]> {
  const states = await machineStates(root, st);
  const out: string[] = [];
  for (const h of plan.hosts) {
    const ok = states.get(h.name) === 'running' && onLink(h.address) && (await tcpReachable(h.address, 22));
    if (!ok) out.push(h.name);
  }
  return out;
}

/** Each VM's state as `vagrant status` reports it (running, shutoff, not_created...). */
async function machineStates(root: string, st: LabState): Promise<Map<string, string>> {
  const states = new Map<string, string>();
  if (st.provider === 'libvirt' && !(await libvirtAnswers())) return states;
  const r = await run('vagrant', ['status', '--machine-readable'], { env: vagrantEnv(root, st), timeoutMs: 180_000 });
  for (const line of r.stdout.split('\n')) {
    const f = line.split(',');
    if (f[2] === 'state') states.set(f[1], f[3]);
  }
  return states;
}

/**
 * Prints each VM of the Vagrant lab: its address, its state as Vagrant reports it, and whether sshd
 * answers on its lab address. Sets the exit code to 1 when the lab is not fully up.
 */
export async function vagrantStatus(): Promise<void> {
  const root = repoRoot;
  const plan = readPlan(root);
  const st = readState(root);
  const states = st ? await machineStates(root, st) : new Map<string, string>();
  const rows: string[] = [];
  let up = !!st;
  for (const h of plan.hosts) {
    const state = st ? (states.get(h.name) ?? 'unknown') : 'not_created';
    const ssh = state === 'running' && onLink(h.address) && (await tcpReachable(h.address, 22));
    if (!ssh) up = false;
    rows.push([h.name.padEnd(7), h.address.padEnd(12), state.padEnd(12), ssh ? 'answers' : 'silent'].join(' '));
  }
  console.log(
    `vagrant lab: ${!st ? 'down' : up ? 'up' : 'NOT fully up'}${st ? ` (provider ${st.provider}, box ${st.box}${st.driver ? `, ${st.driver}` : ''})` : ''}`,
  );
  console.log(['HOST'.padEnd(7), 'ADDRESS'.padEnd(12), 'STATE'.padEnd(12), 'SSHD'].join(' '));
  for (const r of rows) console.log(r);
  if (!up) process.exitCode = 1;
}
