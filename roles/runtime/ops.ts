// The runtime role's own operations: the Node.js that the distribution offers, old releases of the
// bundled runtime, and the switch from one runtime to the other on a running load balancer.
import { PlanError, shq, type Operation } from '../../cli/engine/api.ts';

/** The major version of a version string ("v18.20.4", "18.20.4+dfsg-1~deb12u3", "1:12.22.12~dfsg"). */
export function majorOf(version: string): number | null {
  const m = /^(?:\d+:)?v?(\d+)\./.exec(version.trim());
  return m ? Number(m[1]) : null;
}

/**
 * Node.js `min` or later: the one installed, or else the one apt would install (the package
 * nodejs). A distribution that offers an older one is refused before anything is installed.
 */
export function nodeVersion(min: number): Operation {
  return {
    kind: 'nodejs',
    subject: `Node.js ${min} or later`,
    probe: () =>
      `if command -v node >/dev/null; then echo "installed $(node --version)"; ` +
      `else c=$(apt-cache policy nodejs 2>/dev/null | sed -n 's/^ *Candidate: *//p'); echo "candidate \${c:-none}"; fi`,
    plan(state) {
      const [kind = '', version = ''] = state.trim().split(/\s+/);
      const major = majorOf(version);
      if (kind === 'installed') {
        if (major !== null && major >= min) return { changed: false, note: `node ${version}` };
        throw new PlanError(
          `Node.js ${version} is installed; hasetup-proxy and hasetup-vrrpd need ${min} or later (Debian 12 bookworm has 18): upgrade it, or use \`runtime: haproxy\``,
        );
      }
      if (version === '(none)' || version === 'none' || major === null)
        throw new PlanError(
          `the host's apt offers no Node.js (package nodejs); hasetup-proxy and hasetup-vrrpd need Node.js ${min} or later: use Debian 12 or later, or \`runtime: haproxy\``,
        );
      if (major < min)
        throw new PlanError(
          `the host's apt offers Node.js ${version} (package nodejs); hasetup-proxy and hasetup-vrrpd need ${min} or later (Debian 12 bookworm has 18): use a newer release, or \`runtime: haproxy\``,
        );
      return { changed: false, note: `apt offers nodejs ${version}` };
    },
  };
}

/** Every entry of `dir` but `keep` (release folders of earlier versions, a link left half made). */
export function onlyRelease(dir: string, keep: string[]): Operation {
  const d = shq(dir);
  return {
    kind: 'releases',
    subject: `${dir}: ${keep.join(', ')} only`,
    probe: () => `ls -1A ${d} 2>/dev/null; true`,
    plan(state) {
      const extra = state
        .split('\n')
        .map((l) => l.trim())
        .filter((n) => n && !keep.includes(n));
      if (extra.length === 0) return { changed: false };
      return {
        changed: true,
        script: `cd ${d} && rm -rf -- ${extra.map(shq).join(' ')}`,
        why: `remove ${extra.join(', ')}`,
        diff: `${dir}: remove ${extra.join(', ')}\n`,
      };
    },
  };
}

export interface SwitchSpec {
  /** The runtime that stays. */
  to: string;
  /** Units of the other runtime, VRRP first (a master hands the VIP over), then the proxy. */
  stop: string[];
  /** Units of this runtime, proxy first, each started when its configuration file exists. */
  start: { unit: string; config: string; ready?: string }[];
  /** Shell run before this runtime starts (runtime folders, file groups), and its undoing on a failure. */
  prepare?: string;
  unprepare?: string;
  /** What of the other runtime goes once this one runs: Debian packages (purged), paths, system users. */
  purge: string[];
  paths: string[];
  users: string[];
  /** Configuration files kept across the purge (both runtimes read the same ones). */
  keep: string[];
  /** System users a purge deletes that this runtime still runs as: put back with the same ids. */
  keepUsers: string[];
}

/**
 * The other runtime, gone: on a running load balancer, its VRRP daemon stops first (a master hands
 * the VIP to its peer), then its proxy; this runtime starts on the same configuration files, and only
 * then are the other runtime's packages, files and users removed. If this runtime does not start, the
 * other one is started again and the task fails. The role runs it on one LB at a time.
 */
export function runtimeSwitch(spec: SwitchSpec): Operation {
  const unit = (u: string) => shq(`${u}.service`);
  const probe = [
    ...spec.stop.map((u) => `systemctl is-active -q ${unit(u)} 2>/dev/null && echo running ${u}`),
    spec.purge.length
      ? `dpkg-query -W -f='\${Package} \${db:Status-Abbrev}\\n' ${spec.purge.map(shq).join(' ')} 2>/dev/null | awk '$2 !~ /^.n/ {print "package", $1}'`
      : '',
    ...spec.paths.map((p) => `if [ -e ${shq(p)} ] || [ -L ${shq(p)} ]; then echo path ${shq(p)}; fi`),
    ...spec.users.map((u) => `getent passwd ${shq(u)} >/dev/null && echo user ${u}`),
  ].filter(Boolean);
  const saved = (f: string) => `/var/lib/hasetup/switch/$(basename ${shq(f)})`;
  return {
    kind: 'runtime',
    subject: spec.to,
    probe: () => probe.map((p) => `{ ${p}; true; }`).join('\n'),
    plan(state) {
      const found = state
        .split('\n')
        .map((l) => l.trim())
        .filter(Boolean);
      if (found.length === 0) return { changed: false };
      const start = spec.start
        .map(
          (s) =>
            `if [ -s ${shq(s.config)} ]; then systemctl enable --now ${unit(s.unit)} || { systemctl status --no-pager -n 15 ${unit(s.unit)}; exit 1; }${s.ready ? `; ${s.ready}` : ''}; fi`,
        )
        .join('\n');
      const script = [
        // the other runtime stops (and the units that ran are remembered, to come back on a failure)
        'was=""',
        ...spec.stop.map((u) => `if systemctl is-active -q ${unit(u)}; then was="$was ${u}"; systemctl stop ${unit(u)}; fi`),
        spec.prepare ?? '',
        `if ! ( set -e\n${start}\n); then`,
        `  echo "${spec.to} did not start: the other engine is started again"`,
        ...spec.start.map((s) => `  systemctl stop ${unit(s.unit)} 2>/dev/null`),
        spec.unprepare ? `  ${spec.unprepare}` : '',
        // proxy before VRRP on the way back (the reverse of the stop order)
        `  for u in $(echo $was | tr ' ' '\\n' | tac); do systemctl start "$u.service"; done`,
        '  exit 1',
        'fi',
        'set -e',
        ...spec.stop.map((u) => `systemctl disable -q ${unit(u)} 2>/dev/null || true`),
        // what the other runtime leaves goes; the shared configuration files and users stay
        ...spec.keep.map((f) => `if [ -f ${shq(f)} ]; then mkdir -p /var/lib/hasetup/switch && cp -p ${shq(f)} ${saved(f)}; fi`),
        ...spec.keepUsers.map((u) => `ids_${u}=$(getent passwd ${shq(u)} | cut -d: -f3,4)`),
        spec.purge.length
          ? `export DEBIAN_FRONTEND=noninteractive\napt-get -q -y -o DPkg::Lock::Timeout=300 purge ${spec.purge.map(shq).join(' ')} >/tmp/hasetup-apt.log 2>&1 || { tail -n 8 /tmp/hasetup-apt.log; exit 1; }`
          : '',
        ...spec.keepUsers.map(
          (u) =>
            `if [ -n "$ids_${u}" ] && ! getent passwd ${shq(u)} >/dev/null; then ` +
            `getent group ${shq(u)} >/dev/null || groupadd --system -g "\${ids_${u}#*:}" ${shq(u)}; ` +
            `useradd --system -u "\${ids_${u}%:*}" -g ${shq(u)} --home-dir /var/lib/${u} --no-create-home --shell /usr/sbin/nologin ${shq(u)}; fi`,
        ),
        ...spec.keep.map((f) => `if [ -f ${saved(f)} ]; then mkdir -p $(dirname ${shq(f)}) && mv -f ${saved(f)} ${shq(f)}; fi`),
        'rmdir /var/lib/hasetup/switch 2>/dev/null || true',
        ...spec.paths.map((p) => `rm -rf -- ${shq(p)}`),
        ...spec.users.map((u) => `if getent passwd ${shq(u)} >/dev/null; then userdel ${shq(u)}; fi`),
        'systemctl daemon-reload',
      ].filter(Boolean);
      return {
        changed: true,
        script: script.join('\n'),
        why: `switch to ${spec.to}: ${found.join(', ')}`,
        diff: `runtime: switch to ${spec.to}, remove ${found.join(', ')}\n`,
      };
    },
  };
}
