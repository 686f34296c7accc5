// A real sshd in a network namespace of the test's own, reached over a veth pair: the engine's
// integration tests talk real SSH to it. Everything created is removed by stop().
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, readFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:net';

export interface Sshd {
  address: string;
  port: number;
  dir: string;
  privateKey: string;
  knownHosts: string;
  ns: string;
  /** Replaces the server's host key (a "rebuilt host"). */
  rotateHostKey(): Promise<void>;
  stop(): Promise<void>;
}

const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();

async function waitPort(host: string, port: number, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((res) => {
      const s = connect({ host, port }, () => (s.destroy(), res(true)));
      s.on('error', () => res(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`sshd at ${host}:${port} did not answer within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function startSshd(tag: string, subnet = 253): Promise<Sshd> {
  const ns = `hse-${tag}-${process.pid}`.slice(0, 15);
  const vethHost = `hse${process.pid}h`.slice(0, 15);
  const vethNs = `hse${process.pid}n`.slice(0, 15);
  const address = `10.213.${subnet}.2`;
  const dir = mkdtempSync(join(tmpdir(), 'hasetup-sshd-'));
  let child: ChildProcess | undefined;
  const cleanup = () => {
    if (child?.pid && child.exitCode === null) child.kill('SIGTERM');
    try {
      sh('ip', ['link', 'del', vethHost]);
    } catch {}
    try {
      sh('ip', ['netns', 'del', ns]);
    } catch {}
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    sh('ip', ['netns', 'add', ns]);
    sh('ip', ['link', 'add', vethHost, 'type', 'veth', 'peer', 'name', vethNs]);
    sh('ip', ['link', 'set', vethNs, 'netns', ns]);
    sh('ip', ['addr', 'add', `10.213.${subnet}.1/30`, 'dev', vethHost]);
    sh('ip', ['link', 'set', vethHost, 'up']);
    sh('ip', ['-n', ns, 'addr', 'add', `${address}/30`, 'dev', vethNs]);
    sh('ip', ['-n', ns, 'link', 'set', vethNs, 'up']);
    sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    sh('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'hostkey')]);
    sh('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'client')]);
    writeFileSync(join(dir, 'authorized_keys'), readFileSync(join(dir, 'client.pub')));
    writeFileSync(
      join(dir, 'sshd_config'),
      [
        'Port 22',
        `ListenAddress ${address}`,
        `HostKey ${join(dir, 'hostkey')}`,
        `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
        'PermitRootLogin prohibit-password',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'UsePAM no',
        'StrictModes no',
        `PidFile ${join(dir, 'sshd.pid')}`,
        'MaxStartups 100',
        'MaxSessions 100',
        'LogLevel ERROR',
      ].join('\n') + '\n',
    );
    mkdirSync('/run/sshd', { recursive: true });
    child = spawn('ip', ['netns', 'exec', ns, '/usr/sbin/sshd', '-D', '-e', '-f', join(dir, 'sshd_config')], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    await waitPort(address, 22, 10_000);
  } catch (e) {
    cleanup();
    throw e;
  }
  const s: Sshd = {
    address,
    port: 22,
    dir,
    ns,
    privateKey: join(dir, 'client'),
    knownHosts: join(dir, 'known_hosts'),
    async rotateHostKey() {
      rmSync(join(dir, 'hostkey'));
      rmSync(join(dir, 'hostkey.pub'));
      sh('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'hostkey')]);
      // sshd reads host keys at each connection's re-exec: a new connection sees the new key.
    },
    async stop() {
      if (child?.pid && child.exitCode === null) {
        const exited = new Promise((r) => child?.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      cleanup();
    },
  };
  return s;
}
