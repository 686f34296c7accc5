// Role runtime: the runtime the load balancers run, as the inventory's `runtime` says.
//   bundled (default): hasetup's own proxy and VRRP daemon.
//     1. Node.js from the distribution, 18 or later (refused before anything is installed if older)
//     2. the bundles (dist/runtime) and the native addons for the host's architecture, into a folder
//        of their version; `current` is switched to it atomically once every file is there and
//        checked, so a failed upload never leaves a half-installed runtime. Files travel only when
//        their checksum differs, and never as a diff. Earlier versions are removed.
//     3. system users (the proxy runs as the `haproxy` user its configuration names, the VRRP daemon
//        as `hasetup`) and systemd units with least privilege: the proxy holds CAP_NET_BIND_SERVICE
//        only, the VRRP daemon CAP_NET_ADMIN and CAP_NET_RAW only; reload by signal; logs to the journal
//   haproxy: Debian's haproxy and keepalived packages, installed without starting (the proxy and vrrp
//     roles start them once their configuration is in place), and their own units.
//   Either way, what the other runtime left is removed; on a running load balancer that is a switch,
//   made on one LB at a time (the backup first): the other runtime's VRRP daemon stops (a master hands
//   the VIP over), then its proxy, and this runtime starts on the same configuration files.
//   A new version of the bundled runtime restarts it the same way, one LB at a time.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import {
  directory,
  file,
  findRepoRoot,
  group,
  link,
  packages,
  user,
  type Handler,
  type Inventory,
  type Role,
  type Task,
} from '../../cli/engine/api.ts';
import {
  BUNDLED,
  CURRENT,
  HAPROXY,
  lbTurn,
  PROXY_CONFIG,
  RUNTIME_DIR,
  VRRP_CONFIG,
  waitServing,
  isLb,
  STATS_SOCKET,
  KEEPALIVED_DROPIN,
  vipRelease,
  type LbRuntime,
} from '../lb.ts';
import { runtimeSwitch, nodeVersion, onlyRelease, type SwitchSpec } from './ops.ts';

// ---- defaults -------------------------------------------------------------------------------
export const defaults = {
  nodeMin: 18,
  /** socat talks to the runtime API's UNIX socket (hasetup status, drain), with either runtime. */
  bundledPackages: ['nodejs', 'socat'],
  haproxyPackages: ['haproxy', 'keepalived', 'socat'],
  /** The proxy runs as the user its configuration names (the seed's `user haproxy`). */
  proxyUser: 'haproxy',
  proxyHome: '/var/lib/haproxy',
  vrrpUser: 'hasetup',
  /** keepalived runs its scripts as this user when it exists (and refuses them otherwise). */
  keepalivedScriptUser: 'keepalived_script',
  units: ['hasetup-proxy', 'hasetup-vrrpd'],
};

const ARCH: Record<string, string> = { x86_64: 'x64', amd64: 'x64', aarch64: 'arm64', arm64: 'arm64' };

/** The bundled runtime for one architecture: its files and a version folder named after their checksum. */
export function bundle(
  arch: string,
  dist = join(findRepoRoot(), 'dist', 'runtime'),
): { version: string; files: { name: string; content: Buffer; mode: string }[] } {
  const a = ARCH[arch];
  if (!a) throw new Error(`the bundled runtime is built for x86_64 and aarch64, not ${arch}: use \`runtime: haproxy\``);
  const names = ['hasetup-proxy.cjs', 'hasetup-vrrpd.cjs', `proxy-linux-${a}.node`, `vrrpd-linux-${a}.node`];
  const files = names.map((name) => {
    let content: Buffer;
    try {
      content = readFileSync(join(dist, name));
    } catch {
      throw new Error(
        `${join(dist, name)} is missing: run \`npm run build\` in the hasetup checkout${a === 'arm64' ? ' (arm64 addons need gcc-aarch64-linux-gnu)' : ''}`,
      );
    }
    return { name, content, mode: name.endsWith('.cjs') ? '0755' : '0644' };
  });
  const h = createHash('sha256');
  for (const f of files) h.update(f.name).update(f.content);
  const pkg = JSON.parse(readFileSync(join(dist, '..', '..', 'package.json'), 'utf8')) as { version: string };
  return { version: `${pkg.version}-${h.digest('hex').slice(0, 12)}`, files };
}

/**
 * The task that leaves `to` the only runtime, one LB at a time: the other's VRRP daemon stopped first
 * (a master hands the VIP over), then its proxy; this runtime started on the same files, the VRRP
 * configuration's group made this runtime's (given back on a failure); then what `rest` purges.
 */
function switchTo(inv: Inventory, to: LbRuntime, what: string, rest: Omit<SwitchSpec, 'to' | 'stop' | 'start' | 'unprepare'>): Task {
  const from = to === BUNDLED ? HAPROXY : BUNDLED;
  const chgrp = (g: string) => `if [ -f ${VRRP_CONFIG} ]; then chgrp ${g} ${VRRP_CONFIG}; fi`;
  return {
    name: to === BUNDLED ? 'no haproxy or keepalived' : 'no bundled runtime',
    serial: lbTurn(inv),
    op: runtimeSwitch({
      ...rest,
      to: what,
      stop: [from.vrrpUnit, from.proxyUnit],
      start: [
        { unit: to.proxyUnit, config: PROXY_CONFIG, ready: waitServing(inv) },
        { unit: to.vrrpUnit, config: VRRP_CONFIG },
      ],
      prepare: [rest.prepare, chgrp(to.vrrpGroup)].filter(Boolean).join('\n'),
      unprepare: chgrp(from.vrrpGroup),
    }),
  };
}

const role: Role = {
  name: 'runtime',
  description:
    "the LBs' runtime: the bundled proxy and VRRP daemon (Node.js, versioned release, hardened units) or Debian's haproxy and keepalived",
  appliesTo: isLb,
  installs: (_h, inv) =>
    inv.runtime === 'haproxy' ? { packages: defaults.haproxyPackages, services: [] } : { packages: defaults.bundledPackages, services: [] },

  // ---- tasks ---------------------------------------------------------------------------------
  tasks(ctx) {
    const { inv, facts } = ctx;
    if (inv.runtime === 'haproxy') {
      return [
        { name: 'haproxy and keepalived (not started yet)', op: packages(defaults.haproxyPackages, { noStart: true }) },
        // a keepalived that dies takes the VIP with it, and starts again
        { name: 'keepalived.service.d', op: directory({ path: dirname(KEEPALIVED_DROPIN) }) },
        {
          name: 'keepalived drop-in (VIP released when it dies)',
          op: file({ path: KEEPALIVED_DROPIN, content: ctx.template('keepalived-dropin.conf.njk', { vipRelease: vipRelease(inv) }) }),
          notify: ['reload systemd'],
        },
        switchTo(inv, HAPROXY, 'haproxy and keepalived', {
          // HAProxy's runtime folder (the bundled unit's went with it); keepalived reads its file as
          // root; its drop-in read before it starts
          prepare: 'systemd-tmpfiles --create haproxy.conf\nsystemctl daemon-reload',
          purge: [],
          paths: [...defaults.units.map((u) => `/etc/systemd/system/${u}.service`), RUNTIME_DIR.replace(/\/runtime$/, '')],
          users: [defaults.vrrpUser],
          keep: [],
          keepUsers: [],
        }),
      ];
    }
    const b = bundle(facts.arch);
    const release = `${RUNTIME_DIR}/${b.version}`;
    const tasks: Task[] = [
      { name: `Node.js ${defaults.nodeMin} or later`, op: nodeVersion(defaults.nodeMin) },
      { name: 'packages', op: packages(defaults.bundledPackages) },
      { name: `group ${defaults.proxyUser}`, op: group({ name: defaults.proxyUser, system: true }) },
      {
        name: `user ${defaults.proxyUser} (the proxy)`,
        op: user({ name: defaults.proxyUser, group: defaults.proxyUser, system: true, home: defaults.proxyHome }),
      },
      { name: `group ${defaults.vrrpUser}`, op: group({ name: defaults.vrrpUser, system: true }) },
      {
        name: `user ${defaults.vrrpUser} (the VRRP daemon)`,
        op: user({ name: defaults.vrrpUser, group: defaults.vrrpUser, system: true }),
      },
      { name: 'runtime folder', op: directory({ path: RUNTIME_DIR }) },
      { name: `release ${b.version}`, op: directory({ path: release }) },
      ...b.files.map((f) => ({ name: f.name, op: file({ path: `${release}/${f.name}`, content: f.content, mode: f.mode, binary: true }) })),
      { name: 'current release', op: link({ path: CURRENT, target: b.version }), notify: ['restart the runtime'] },
      { name: 'earlier releases removed', op: onlyRelease(RUNTIME_DIR, [b.version, 'current']) },
      {
        name: 'unit hasetup-proxy',
        op: file({
          path: '/etc/systemd/system/hasetup-proxy.service',
          content: ctx.template('hasetup-proxy.service.njk', {
            current: CURRENT,
            config: PROXY_CONFIG,
            user: defaults.proxyUser,
            runtimeDir: STATS_SOCKET.split('/')[2],
          }),
        }),
        notify: ['reload systemd', 'restart the runtime'],
      },
      {
        name: 'unit hasetup-vrrpd',
        op: file({
          path: '/etc/systemd/system/hasetup-vrrpd.service',
          content: ctx.template('hasetup-vrrpd.service.njk', {
            current: CURRENT,
            config: VRRP_CONFIG,
            user: defaults.vrrpUser,
            vipRelease: vipRelease(inv),
          }),
        }),
        notify: ['reload systemd', 'restart the runtime'],
      },
      // the VRRP daemon reads its configuration as its own group
      switchTo(inv, BUNDLED, 'the bundled runtime', {
        purge: ['haproxy', 'keepalived'],
        paths: [dirname(KEEPALIVED_DROPIN)],
        users: [defaults.keepalivedScriptUser],
        keep: [PROXY_CONFIG, VRRP_CONFIG],
        // purging haproxy deletes its user, which the bundled proxy runs as
        keepUsers: [defaults.proxyUser],
      }),
    ];
    return tasks;
  },

  // ---- handlers ------------------------------------------------------------------------------
  handlers(ctx): Handler[] {
    const { inv } = ctx;
    return [
      { name: 'reload systemd', script: 'systemctl daemon-reload' },
      {
        // a new release or unit: the VRRP daemon steps back first (a master hands the VIP over), the
        // proxy restarts, and the VRRP daemon comes back once the proxy serves (it takes the VIP back
        // when its tracker sees the proxy again)
        name: 'restart the runtime',
        serial: lbTurn(inv),
        script: [
          // only a process older than the release or its unit (not one a switch just started)
          `stale() { t=$(systemctl show -p ActiveEnterTimestamp --value "$1.service"); [ -n "$t" ] && systemctl is-active -q "$1.service" && ` +
            `[ "$(date -d "$t" +%s)" -lt "$(stat -c %Y ${CURRENT} /etc/systemd/system/$1.service | sort -n | tail -n1)" ]; }`,
          `vrrp=0; proxy=0; stale ${BUNDLED.vrrpUnit} && vrrp=1; stale ${BUNDLED.proxyUnit} && proxy=1`,
          `if [ $vrrp = 1 ] || [ $proxy = 1 ]; then`,
          `  v=0; if systemctl is-active -q ${BUNDLED.vrrpUnit}; then v=1; systemctl stop ${BUNDLED.vrrpUnit}; fi`,
          `  if systemctl is-active -q ${BUNDLED.proxyUnit}; then systemctl restart ${BUNDLED.proxyUnit}; ${waitServing(inv)}; fi`,
          `  if [ $v = 1 ]; then systemctl start ${BUNDLED.vrrpUnit}; fi`,
          `fi`,
        ].join('\n'),
      },
    ];
  },
};

export default role;
