// The tools `lab up` needs on this machine, installed with apt-get when missing.
import { existsSync } from 'node:fs';
import { commandExists, log, run, runOk } from './proc.ts';

/** command → Debian package providing it */
const TOOLS: [string, string][] = [
  ['mmdebstrap', 'mmdebstrap'],
  ['systemd-nspawn', 'systemd-container'],
  ['dpkg-scanpackages', 'dpkg-dev'],
  ['ssh', 'openssh-client'],
  ['ssh-keygen', 'openssh-client'],
  ['ip', 'iproute2'],
  ['nsenter', 'util-linux'],
];

export async function missingTools(): Promise<string[]> {
  const missing = new Set<string>();
  for (const [cmd, pkg] of TOOLS) if (!commandExists(cmd)) missing.add(pkg);
  return [...missing];
}

/** Installs the missing host tools with the machine's own apt configuration. */
export async function ensureHostTools(): Promise<void> {
  const missing = await missingTools();
  if (missing.length === 0) return;
  if (!existsSync('/usr/bin/apt-get')) {
    throw new Error(`the lab needs these Debian packages, and this machine has no apt-get: ${missing.join(' ')}`);
  }
  log(`installing host tools: ${missing.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const r = await run('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...missing], { env });
  if (r.code !== 0) {
    await runOk('apt-get', ['update', '-q'], { env });
    await runOk('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...missing], { env });
  }
  const still = await missingTools();
  if (still.length) throw new Error(`installed, yet still missing: ${still.join(' ')}`);
}
