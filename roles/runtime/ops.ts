// The runtime role's own operations: the Node.js that the distribution offers, old releases of the
// bundled runtime, and the switch from one engine to the other on a running load balancer.
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
        throw new PlanError(`Node.js ${version} is installed; hasetup-proxy and hasetup-vrrpd need ${min} or later (Debian 12 bookworm has 18): upgrade it, or use \`runtime: haproxy\``);
      }
      if (version === '(none)' || version === 'none' || major === null)
        throw new PlanError(`the host's apt offers no Node.js (package nodejs); hasetup-proxy and hasetup-vrrpd need Node.js ${min} or later: use Debian 12 or later, or \`runtime: haproxy\``);
      if (major < min)
        throw new PlanError(`the host's apt offers Node.js ${version} (package nodejs); hasetup-proxy and hasetup-vrrpd need ${min} or later (Debian 12 bookworm has 18): use a newer release, or \`runtime: haproxy\``);
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
      const extra = state.split('\n').map((l) => l.trim()).filter((n) => n && !keep.includes(n));
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
  /** The engine that stays. */
  to: string;
  /** Units of the other engine, VRRP first (a master hands the VIP over), then the proxy. */
  stop: string[];
  /** What of the other engine must go: Debian packages (purged), paths, system users. */
  purge: string[];
  paths: string[];
  users: string[];
  /** Configuration files kept across the purge (both engines read the same ones). */
  keep: string[];
  /** Shell run once the other engine is gone: starts this engine on the configuration in place. */
  start: string;
}

/**
 * The other engine, gone: on a running load balancer, its VRRP daemon is stopped first (a master
 * hands the VIP to its peer), then its proxy; its packages, files and users are removed (the
 * shared configuration files kept), and this engine starts on the same configuration. The role runs
 * it on one LB at a time.
 */
export function engineSwitch(spec: SwitchSpec): Operation {
  const probe = [
    ...spec.stop.map((u) => `systemctl is-active -q ${shq(`${u}.service`)} 2>/dev/null && echo running ${u}`),
    spec.purge.length ? `dpkg-query -W -f='\${Package} \${db:Status-Abbrev}\\n' ${spec.purge.map(shq).join(' ')} 2>/dev/null | awk '$2 !~ /^.n/ {print "package", $1}'` : '',
    ...spec.paths.map((p) => `if [ -e ${shq(p)} ] || [ -L ${shq(p)} ]; then echo path ${shq(p)}; fi`),
    ...spec.users.map((u) => `getent passwd ${shq(u)} >/dev/null && echo user ${u}`),
  ].filter(Boolean);
  return {
    kind: 'engine',
    subject: spec.to,
    probe: () => probe.map((p) => `{ ${p}; true; }`).join('\n'),
    plan(state) {
      const found = state.split('\n').map((l) => l.trim()).filter(Boolean);
      if (found.length === 0) return { changed: false };
      const keep = spec.keep.map((f) => `if [ -f ${shq(f)} ]; then mkdir -p /var/lib/hasetup/switch && cp -p ${shq(f)} /var/lib/hasetup/switch/$(basename ${shq(f)}); fi`);
      const restore = spec.keep.map((f) => `if [ -f /var/lib/hasetup/switch/$(basename ${shq(f)}) ]; then mkdir -p $(dirname ${shq(f)}) && mv -f /var/lib/hasetup/switch/$(basename ${shq(f)}) ${shq(f)}; fi`);
      const script = [
        'set -e',
        ...spec.stop.map((u) => `systemctl disable -q --now ${shq(`${u}.service`)} 2>/dev/null || true`),
        ...keep,
        spec.purge.length
          ? `export DEBIAN_FRONTEND=noninteractive\napt-get -q -y -o DPkg::Lock::Timeout=300 purge ${spec.purge.map(shq).join(' ')} >/tmp/hasetup-apt.log 2>&1 || { tail -n 8 /tmp/hasetup-apt.log; exit 1; }`
          : '',
        ...restore,
        'rmdir /var/lib/hasetup/switch 2>/dev/null || true',
        ...spec.paths.map((p) => `rm -rf -- ${shq(p)}`),
        ...spec.users.map((u) => `if getent passwd ${shq(u)} >/dev/null; then userdel ${shq(u)}; fi`),
        'systemctl daemon-reload',
        spec.start,
      ].filter(Boolean);
      return {
        changed: true,
        script: script.join('\n'),
        why: `switch to ${spec.to}: ${found.join(', ')}`,
        diff: `engine: switch to ${spec.to}, remove ${found.join(', ')}\n`,
      };
    },
  };
}
