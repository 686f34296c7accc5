// The lab's fixed shape (hosts, addresses, packages) and where its files live.
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Group } from '../../inventory/types.ts';
import { findRepoRoot } from '../root.ts';

/** The checkout's root (found upwards: the same from the sources and from the bundle's chunks). */
export const repoRoot = findRepoRoot();

export const SUBNET_PREFIX = '10.213.0';
export const PREFIX_LEN = 24;
export const CTL_ADDRESS = `${SUBNET_PREFIX}.10`;
export const VIP = `${SUBNET_PREFIX}.100/${PREFIX_LEN}`;

export interface LabHost {
  name: string;
  address: string;
  group: Group;
  priority?: number;
  serverId?: number;
}

/** The lab's size: web nodes web01..web0N (at .21 to .2N), and db02 (the MySQL replica) or not. */
export interface LabShape {
  replica: boolean;
  webs: number;
}

export const DEFAULT_WEBS = 2;
export const MAX_WEBS = 9;

/** The hosts of a lab: the seed's five (two LBs, two web nodes, one DB), more web nodes, db02 with the replica. */
export function hostsFor(shape: Partial<LabShape> = {}): LabHost[] {
  const webs = shape.webs ?? DEFAULT_WEBS;
  if (!Number.isInteger(webs) || webs < 1 || webs > MAX_WEBS) throw new LabError(`the lab has 1 to ${MAX_WEBS} web nodes, not ${webs}`);
  return [
    { name: 'lb01', address: `${SUBNET_PREFIX}.11`, group: 'lb', priority: 150 },
    { name: 'lb02', address: `${SUBNET_PREFIX}.12`, group: 'lb', priority: 100 },
    ...Array.from({ length: webs }, (_, i): LabHost => ({ name: `web0${i + 1}`, address: `${SUBNET_PREFIX}.2${i + 1}`, group: 'web' })),
    { name: 'db01', address: `${SUBNET_PREFIX}.31`, group: 'db', serverId: 1 },
    ...(shape.replica ? [{ name: 'db02', address: `${SUBNET_PREFIX}.32`, group: 'db' as const, serverId: 2 }] : []),
  ];
}

/** Every host a lab can have (for clean-up and lookups). */
export const ALL_HOSTS: LabHost[] = hostsFor({ replica: true, webs: MAX_WEBS });

export const SUITE = 'bookworm';

/** What the base image holds (on top of the minbase variant). */
export const BASE_PACKAGES = [
  'systemd',
  'systemd-sysv',
  'dbus',
  'openssh-server',
  'iproute2',
  'netbase',
  'ca-certificates',
  'sudo',
  'procps',
  'iputils-ping',
];

/** Every package a role may install, fetched with its dependencies into the hosts' local repository. */
export const REPO_PACKAGES = [
  'apache2',
  // the application tier: PHP-FPM behind Apache's event MPM, with MariaDB's driver and opcache
  'php8.2-fpm',
  'php8.2-mysql',
  'php8.2-opcache',
  'mariadb-server',
  'mariadb-client',
  'nodejs',
  'nftables',
  'curl',
  'iputils-arping',
  'chrony',
  'keepalived',
  'haproxy',
  'socat',
  // Not for hasetup (hosts need no python): for the Ansible anchor of the engine benchmark (bench/engine).
  'python3-apt',
];

/** Where the hosts see the local repository, and their only apt source. */
export const REPO_MOUNT = '/srv/repo';
export const HOST_APT_SOURCE = `deb [trusted=yes] file:${REPO_MOUNT} ./`;

/** An error meant for the user as it is (no stack trace). */
export class LabError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'LabError';
  }
}

export interface LabConfig {
  /** Instance name: several labs may run side by side, each in its own namespaces (same addresses). */
  name: string;
  /** Prefix of every namespace and cgroup this instance creates. */
  prefix: string;
  stateDir: string;
  cacheDir: string;
}

export interface LabOptions {
  name?: string;
  stateDir?: string;
  cacheDir?: string;
}

export function labConfig(opts: LabOptions = {}): LabConfig {
  const name = opts.name ?? process.env.HASETUP_LAB_NAME ?? 'lab';
  if (!/^[a-z0-9][a-z0-9-]{0,19}$/.test(name)) {
    throw new LabError(`lab name must be 1-20 characters of [a-z0-9-], got "${name}"`);
  }
  // outside the checkout: the hosts' overlays hold whole file systems (JavaScript included) that
  // tools walking the checkout must not see
  const stateHome = process.env.XDG_STATE_HOME || join(homedir(), '.local', 'state');
  const stateDir = resolve(opts.stateDir ?? process.env.HASETUP_LAB_STATE ?? join(stateHome, 'hasetup', 'lab', name));
  const cacheDir = resolve(opts.cacheDir ?? process.env.HASETUP_LAB_CACHE ?? join(homedir(), '.cache', 'hasetup', 'lab'));
  if (cacheDir === '/' || stateDir === '/') throw new LabError('the lab cache and state directories cannot be /');
  return { name, prefix: `hsl-${name}-`, stateDir, cacheDir };
}

/**
 * Where `lab up` writes the inventory unless told: lab/inventory.yaml in the checkout for the default
 * lab, and inventory.yaml in its state directory for a lab of another name.
 */
export const defaultInventoryPath = (cfg?: LabConfig): string =>
  cfg && cfg.name !== 'lab' ? join(cfg.stateDir, 'inventory.yaml') : join(repoRoot, 'lab', 'inventory.yaml');
