// A small LAN of SSH hosts for the wizard's tests: a bridge in a namespace of its own, one network
// namespace per host (eth0 on the bridge, in 10.213.240.0/24), each with a real sshd of its own
// (its own host key), and this machine on the bridge as 10.213.240.1, the controller.
//
// Each sshd runs in a private mount namespace (the one `ip netns exec` makes), where the test can
// shape what the host looks like: a /run of its own with or without /run/systemd/system (a systemd
// host or not), another /etc/os-release, and a login user with or without passwordless sudo
// (/etc/passwd, /etc/group, /etc/shadow and /etc/sudoers bound over in that namespace only). Everything is
// removed by stop(): processes, namespaces, the root side's veth and the temp folder.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const SUBNET = '10.213.240';
export const CONTROLLER = `${SUBNET}.1`;
export const SUDO_USER = 'hsadmin';

/** The seed's five hosts, numbered as in the lab (lb .11 .12, web .21 .22, db .31). */
export const SEED_HOSTS: readonly HostSpec[] = [
  { name: 'lb01', octet: 11 },
  { name: 'lb02', octet: 12 },
  { name: 'web01', octet: 21 },
  { name: 'web02', octet: 22 },
  { name: 'db01', octet: 31 },
];

export interface HostSpec {
  name: string;
  /** Last octet of its address. */
  octet: number;
  /** Runs sshd (default true): false leaves port 22 closed. */
  sshd?: boolean;
  /** Looks booted with systemd (default true). */
  systemd?: boolean;
  /** /etc/os-release ID (default: this machine's). */
  osId?: string;
  /** Whether SUDO_USER may sudo without a password there (default true). */
  sudoNoPassword?: boolean;
  /** Interfaces to add beside eth0 (a veth pair inside the host, without an address). */
  extraLinks?: string[];
}

const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
const quiet = (cmd: string, args: string[]) => {
  try {
    sh(cmd, args);
  } catch {}
};

export class Lan {
  readonly dir = mkdtempSync(join(tmpdir(), 'hasetup-init-lan-'));
  readonly id = `hsi${process.pid}`;
  /** The client's private key (its public key is authorized for root and SUDO_USER on every host). */
  readonly key = join(this.dir, 'client');
  private readonly namespaces: string[] = [];
  private readonly procs: ChildProcess[] = [];
  private readonly specs = new Map<string, HostSpec>();

  private get rootVeth(): string {
    return `${this.id}c`;
  }

  ns(host: string): string {
    return `${this.id}-${host}`;
  }

  address(host: string): string {
    const s = this.specs.get(host);
    if (!s) throw new Error(`no host ${host} in the test LAN`);
    return `${SUBNET}.${s.octet}`;
  }

  hostKeyPub(host: string): string {
    return join(this.dir, `${host}.hostkey.pub`);
  }

  /** Runs a command in a host's network namespace. */
  inHost(host: string, args: string[]): string {
    return sh('ip', ['netns', 'exec', this.ns(host), ...args]);
  }

  static async start(specs: readonly HostSpec[]): Promise<Lan> {
    const lan = new Lan();
    try {
      await lan.build(specs);
    } catch (e) {
      await lan.stop();
      throw e;
    }
    return lan;
  }

  private addNs(ns: string): void {
    this.namespaces.push(ns);
    sh('ip', ['netns', 'add', ns]);
    sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  }

  private async build(specs: readonly HostSpec[]): Promise<void> {
    const br = `${this.id}-br`;
    this.addNs(br);
    sh('ip', ['-n', br, 'link', 'add', 'br0', 'type', 'bridge', 'forward_delay', '0', 'stp_state', '0']);
    sh('ip', ['-n', br, 'link', 'set', 'br0', 'up']);
    sh('ip', ['link', 'add', this.rootVeth, 'type', 'veth', 'peer', 'name', 'p-ctl', 'netns', br]);
    sh('ip', ['-n', br, 'link', 'set', 'p-ctl', 'master', 'br0', 'up']);
    sh('ip', ['addr', 'add', `${CONTROLLER}/24`, 'dev', this.rootVeth]);
    sh('ip', ['link', 'set', this.rootVeth, 'up']);

    sh('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'init-test', '-f', this.key]);
    // sshd reads the authorized keys as the user logging in: the folder must let SUDO_USER through
    chmodSync(this.dir, 0o755);
    writeFileSync(join(this.dir, 'authorized_keys'), readFileSync(`${this.key}.pub`), { mode: 0o644 });
    writeFileSync(
      join(this.dir, 'passwd'),
      `${readFileSync('/etc/passwd', 'utf8').trimEnd()}\n${SUDO_USER}:x:4242:4242:init test:${this.dir}:/bin/sh\n`,
    );
    writeFileSync(join(this.dir, 'group'), `${readFileSync('/etc/group', 'utf8').trimEnd()}\n${SUDO_USER}:x:4242:\n`);
    // sudo checks the account through PAM: it needs a shadow entry (no password: "*")
    writeFileSync(join(this.dir, 'shadow'), `${readFileSync('/etc/shadow', 'utf8').trimEnd()}\n${SUDO_USER}:*:19000:0:99999:7:::\n`, {
      mode: 0o640,
    });
    const pending: string[] = [];
    for (const s of specs) {
      this.specs.set(s.name, s);
      const ns = this.ns(s.name);
      this.addNs(ns);
      sh('ip', ['-n', br, 'link', 'add', `p-${s.name}`.slice(0, 15), 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
      sh('ip', ['-n', br, 'link', 'set', `p-${s.name}`.slice(0, 15), 'master', 'br0', 'up']);
      sh('ip', ['-n', ns, 'addr', 'add', `${SUBNET}.${s.octet}/24`, 'dev', 'eth0']);
      sh('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
      for (const l of s.extraLinks ?? []) {
        sh('ip', ['-n', ns, 'link', 'add', l, 'type', 'veth', 'peer', 'name', `${l}-peer`.slice(0, 15)]);
        sh('ip', ['-n', ns, 'link', 'set', l, 'up']);
      }
      if (s.sshd === false) continue;
      this.startSshd(s);
      pending.push(join(this.dir, `${s.name}.pid`));
    }
    // sshd writes its pid file once it listens
    const deadline = Date.now() + 10_000;
    while (pending.some((p) => !existsSync(p))) {
      const dead = this.procs.find((c) => c.exitCode !== null);
      if (dead) throw new Error(`an sshd of the test LAN exited (${dead.exitCode})`);
      if (Date.now() > deadline) throw new Error("the test LAN's sshd did not start within 10 s");
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  private startSshd(s: HostSpec): void {
    const f = (x: string) => join(this.dir, `${s.name}.${x}`);
    sh('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', s.name, '-f', f('hostkey')]);
    writeFileSync(
      f('sshd_config'),
      [
        'Port 22',
        'ListenAddress 0.0.0.0',
        `HostKey ${f('hostkey')}`,
        `AuthorizedKeysFile ${join(this.dir, 'authorized_keys')}`,
        'PermitRootLogin prohibit-password',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'UsePAM no',
        'StrictModes no',
        `PidFile ${f('pid')}`,
        'LogLevel ERROR',
      ].join('\n') + '\n',
    );
    const sudoers = `root ALL=(ALL:ALL) ALL\n${SUDO_USER} ALL=(ALL) ${s.sudoNoPassword === false ? '' : 'NOPASSWD: '}ALL\n`;
    writeFileSync(f('sudoers'), sudoers);
    chmodSync(f('sudoers'), 0o440);
    const mounts = [
      'set -e',
      // ip netns exec made this mount namespace: nothing mounted here reaches the machine
      'mount -t tmpfs -o mode=0755 hasetup-run /run',
      'mkdir -p /run/sshd',
      ...(s.systemd === false ? [] : ['mkdir -p /run/systemd/system']),
      `mount --bind ${join(this.dir, 'passwd')} /etc/passwd`,
      `mount --bind ${join(this.dir, 'group')} /etc/group`,
      `mount --bind ${join(this.dir, 'shadow')} /etc/shadow`,
      `mount --bind ${f('sudoers')} /etc/sudoers`,
    ];
    if (s.osId) {
      writeFileSync(f('os-release'), `ID=${s.osId}\nNAME="${s.osId}"\nPRETTY_NAME="${s.osId} (test)"\nVERSION_ID="1"\n`);
      mounts.push(`mount --bind ${f('os-release')} /etc/os-release`);
    }
    const child = spawn(
      'ip',
      ['netns', 'exec', this.ns(s.name), 'sh', '-c', `${mounts.join('\n')}\nexec /usr/sbin/sshd -D -e -f ${f('sshd_config')}`],
      {
        stdio: ['ignore', 'ignore', 'inherit'],
      },
    );
    this.procs.push(child);
  }

  /** Gives a host a new host key (a rebuilt host): the next connection sees it. */
  rotateHostKey(host: string): void {
    const k = join(this.dir, `${host}.hostkey`);
    rmSync(k);
    rmSync(`${k}.pub`);
    sh('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', host, '-f', k]);
  }

  async stop(): Promise<void> {
    for (const c of this.procs) if (c.pid && c.exitCode === null) c.kill('SIGTERM');
    // what is left inside these namespaces (sessions' children) was started by this LAN
    for (const ns of this.namespaces) {
      let pids: string[] = [];
      try {
        pids = sh('ip', ['netns', 'pids', ns]).split('\n').filter(Boolean);
      } catch {}
      for (const pid of pids) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {}
      }
    }
    await Promise.all(
      this.procs.filter((c) => c.exitCode === null && c.signalCode === null).map((c) => new Promise((r) => c.once('exit', r))),
    );
    quiet('ip', ['link', 'del', this.rootVeth]);
    for (const ns of this.namespaces.reverse()) quiet('ip', ['netns', 'del', ns]);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
