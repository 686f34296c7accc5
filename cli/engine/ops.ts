// Idempotent operations, in pyinfra's manner: each one prints the state it cares about with a small
// probe (batched with the other tasks' probes into one round trip), then plans from that state the
// commands needed to reach the desired one: none when the host is already right ("ok").
import { createHash } from 'node:crypto';
import { createTwoFilesPatch } from 'diff';
import { shq } from './shell.ts';
import type { Facts } from './facts.ts';
import type { Confirm } from './reconnect.ts';

export interface PlanContext {
  facts: Facts;
  /** In --check mode: true when an earlier task of this host would have changed something. */
  earlierChange: boolean;
}

export type Plan =
  | { changed: false; note?: string }
  | {
      changed: true;
      /** sh script that makes the change; runs as root; stdin carries file contents. */
      script: string;
      stdin?: string | Buffer;
      /** Unified diff (files) or a one-line description of the change. */
      diff?: string;
      why: string;
      /**
       * A change that could cut the controller off (firewall): after it, the runner opens a new
       * connection to the host and runs `script` there to confirm it. The change must have set up
       * its own rollback, firing by itself after `rollbackAfterSec` unless confirmed; if the new
       * connection fails, the runner waits for the rollback (polling `rolledBack` on the old
       * connection until it exits 0) and reports the task failed.
       */
      confirm?: Confirm;
    };

/** A plan that cannot be made from the probed state (e.g. a unit that does not exist). */
export class PlanError extends Error {}

export interface Operation {
  readonly kind: string;
  /** What it acts on, for output: a path, a package list, a unit... */
  readonly subject: string;
  /** sh snippet printing the state to stdout. Its stderr is discarded; it must not read stdin. */
  probe(): string;
  plan(state: string, ctx: PlanContext): Plan;
}

const sha256 = (b: string | Buffer) => createHash('sha256').update(b).digest('hex');

function lines(state: string): string[] {
  return state.split('\n');
}

// ---------------------------------------------------------------------------------------------
// file: content (or rendered template), owner, group, mode; temp file + validate + rename.

export interface FileSpec {
  path: string;
  content: string | Buffer;
  owner?: string; // default root
  group?: string; // default root
  mode?: string; // octal, default 0644
  /** Command validating the new file before it replaces the old one; %s is the temp file's path. */
  validate?: string;
  /** How a failed validation names the check (default: the command's first word). */
  validateName?: string;
  /** The content holds secrets: never show it in a diff. */
  sensitive?: boolean;
  /**
   * A binary or large file (a program, a native addon): the probe reads only its checksum, the
   * content travels only when the checksum differs, and no diff is ever shown.
   */
  binary?: boolean;
}

export function file(spec: FileSpec): Operation {
  const owner = spec.owner ?? 'root';
  const group = spec.group ?? 'root';
  const mode = (spec.mode ?? '0644').replace(/^0?(?=[0-7]{3}$)/, '');
  const want = sha256(spec.content);
  const binary = spec.binary || (Buffer.isBuffer(spec.content) && spec.content.includes(0));
  const p = shq(spec.path);
  // the old content, for the diff: never for a binary file
  const old = spec.binary ? '' : `if [ "$h" != ${want} ] && [ $(stat -c %s ${p}) -lt 262144 ]; then base64 < ${p}; fi; `;
  return {
    kind: 'file',
    subject: spec.path,
    probe: () =>
      // line 1: "absent" or "owner group mode"; line 2: sha256; then the old content (base64) when it differs.
      `if [ -f ${p} ]; then stat -c '%U %G %a' ${p}; h=$(sha256sum < ${p} | cut -c1-64); echo "$h"; ${old}else echo absent; fi`,
    plan(state) {
      const [meta = 'absent', hash = '', ...rest] = lines(state);
      const exists = meta !== 'absent';
      const [curOwner, curGroup, curMode] = meta.split(' ');
      const contentOk = exists && hash === want;
      const metaOk = exists && curOwner === owner && curGroup === group && curMode === mode;
      if (contentOk && metaOk) return { changed: false };
      const why: string[] = [];
      let diff: string | undefined;
      if (!contentOk) {
        why.push(exists ? 'content differs' : 'file absent');
        if (spec.sensitive) diff = `--- ${spec.path}\n+++ ${spec.path}\n(content hidden: it holds secrets)\n`;
        else if (binary)
          diff = `binary file ${spec.path} ${exists ? `differs (sha256 ${hash.slice(0, 12)} -> ${want.slice(0, 12)})` : 'created'}, ${spec.content.length} bytes\n`;
        else {
          const old = exists ? Buffer.from(rest.join(''), 'base64').toString('utf8') : '';
          diff = createTwoFilesPatch(exists ? spec.path : '/dev/null', spec.path, old, spec.content.toString(), '', '', { context: 3 });
        }
      }
      if (exists && !metaOk) why.push(`owner/mode ${curOwner}:${curGroup} ${curMode} -> ${owner}:${group} ${mode}`);
      let script: string;
      if (contentOk) {
        script = `chown ${shq(owner)}:${shq(group)} ${p} && chmod ${mode} ${p}`;
        return { changed: true, script, why: why.join(', '), diff: `${spec.path}: ${why.join(', ')}\n` };
      }
      const validate = spec.validate
        ? `out=$(${spec.validate.replace(/%s/g, '"$tmp"')} 2>&1) || { echo ${shq(`validation failed: ${spec.validateName ?? spec.validate.split(' ')[0]}:`)} "$out"; exit 3; }\n`
        : '';
      script =
        `set -e\ntmp=$(mktemp ${shq(`${spec.path}.hasetup.XXXXXX`)})\ntrap 'rm -f "$tmp"' EXIT\n` +
        `cat > "$tmp"\n` +
        `[ "$(sha256sum < "$tmp" | cut -c1-64)" = ${want} ] || { echo "transfer of ${spec.path} was incomplete"; exit 3; }\n` +
        `chown ${shq(owner)}:${shq(group)} "$tmp"\nchmod ${mode} "$tmp"\n` +
        validate +
        `mv -f "$tmp" ${p}\ntrap - EXIT`;
      return { changed: true, script, stdin: spec.content, diff, why: why.join(', ') };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// directory

export function directory(spec: { path: string; owner?: string; group?: string; mode?: string }): Operation {
  const owner = spec.owner ?? 'root';
  const group = spec.group ?? 'root';
  const mode = (spec.mode ?? '0755').replace(/^0?(?=[0-7]{3}$)/, '');
  const p = shq(spec.path);
  return {
    kind: 'directory',
    subject: spec.path,
    probe: () => `if [ -d ${p} ]; then stat -c '%U %G %a' ${p}; elif [ -e ${p} ]; then echo notdir; else echo absent; fi`,
    plan(state) {
      const s = state.trim();
      if (s === 'notdir') throw new PlanError(`${spec.path} exists and is not a directory`);
      if (s === `${owner} ${group} ${mode}`) return { changed: false };
      return {
        changed: true,
        script: `mkdir -p ${p} && chown ${shq(owner)}:${shq(group)} ${p} && chmod ${mode} ${p}`,
        why: s === 'absent' ? 'absent' : `${s} -> ${owner} ${group} ${mode}`,
        diff: `directory ${spec.path}: ${s === 'absent' ? 'created' : `${s} -> ${owner} ${group} ${mode}`}\n`,
      };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// packages (apt, read from dpkg's state)

export interface PackagesOptions {
  /** 'absent': removed with their configuration files (purge). Default 'present'. */
  state?: 'present' | 'absent';
  /**
   * Install without letting the packages start their services (Debian's policy-rc.d): the role
   * starts them itself once their configuration is in place.
   */
  noStart?: boolean;
}

const APT_LOG = '/tmp/hasetup-apt.log';
const apt = (args: string) =>
  `apt-get -q -y -o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold ${args}`;
const aptFailed = `{ grep -E '^(E|W): ' ${APT_LOG} || tail -n 8 ${APT_LOG}; exit 1; }`;

const POLICY = '/usr/sbin/policy-rc.d';
const POLICY_MARK = 'hasetup: no service starts during its package installs';

/** Runs an apt script with Debian's policy-rc.d saying no to every service start (invoke-rc.d, deb-systemd-invoke). */
function withoutServiceStarts(script: string): string {
  return [
    `if [ -e ${POLICY} ] && ! grep -qF '${POLICY_MARK}' ${POLICY}; then echo '${POLICY} exists: another tool holds back service starts, hasetup leaves it alone'; exit 1; fi`,
    `printf '#!/bin/sh\\n# ${POLICY_MARK}\\nexit 101\\n' > ${POLICY} && chmod 0755 ${POLICY}`,
    `trap 'rm -f ${POLICY}' EXIT HUP INT TERM`,
    script,
  ].join('\n');
}

export function packages(names: string[], opts: PackagesOptions = {}): Operation {
  const list = names.map(shq).join(' ');
  const absent = opts.state === 'absent';
  return {
    kind: 'packages',
    subject: `${absent ? 'absent: ' : ''}${names.join(' ')}`,
    probe: () => `dpkg-query -W -f='\${Package} \${db:Status-Abbrev}\\n' ${list} 2>/dev/null; true`,
    plan(state) {
      const status = new Map(
        lines(state)
          .map((l) => l.trim().split(/\s+/))
          .filter((f) => f[0])
          .map((f) => [f[0], f[1] ?? ''] as const),
      );
      if (absent) {
        // the second letter of db:Status-Abbrev is the state: n = not installed (rc: config files left)
        const present = names.filter((n) => (status.get(n) ?? 'un').slice(1, 2) !== 'n' && status.has(n));
        if (present.length === 0) return { changed: false };
        return {
          changed: true,
          script: `export DEBIAN_FRONTEND=noninteractive\n${apt(`purge ${present.map(shq).join(' ')}`)} >${APT_LOG} 2>&1 || ${aptFailed}`,
          why: `purge ${present.join(' ')}`,
          diff: `packages: purge ${present.join(' ')}\n`,
        };
      }
      const missing = names.filter((n) => status.get(n) !== 'ii');
      if (missing.length === 0) return { changed: false };
      const install = apt(`install --no-install-recommends ${missing.map(shq).join(' ')}`);
      // Non-interactive; waits for a dpkg lock held by another apt (unattended upgrades...); refreshes
      // the package lists once if a package is unknown or the lists are stale.
      const script = `export DEBIAN_FRONTEND=noninteractive\n${install} >${APT_LOG} 2>&1 || { apt-get -q -o DPkg::Lock::Timeout=300 update >>${APT_LOG} 2>&1 && ${install} >>${APT_LOG} 2>&1; } || ${aptFailed}`;
      if (opts.noStart)
        return {
          changed: true,
          script: withoutServiceStarts(script),
          why: `install ${missing.join(' ')} (services not started)`,
          diff: `packages: install ${missing.join(' ')}\n`,
        };
      return { changed: true, script, why: `install ${missing.join(' ')}`, diff: `packages: install ${missing.join(' ')}\n` };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// service (systemd): enabled and started; reloads and restarts go through handlers.

export function service(spec: { name: string; enabled?: boolean; started?: boolean }): Operation {
  const unit = spec.name.includes('.') ? spec.name : `${spec.name}.service`;
  const u = shq(unit);
  return {
    kind: 'service',
    subject: spec.name,
    probe: () =>
      `systemctl is-enabled ${u} 2>/dev/null | head -n1; echo; systemctl is-active ${u} 2>/dev/null | head -n1; echo; systemctl show -p LoadState --value ${u} 2>/dev/null`,
    plan(state, ctx) {
      const [enabled = '', , active = '', , load = ''] = lines(state).map((l) => l.trim());
      if (load === 'not-found' || load === '') {
        if (ctx.earlierChange)
          return {
            changed: true,
            script: 'true',
            why: `unit ${unit} does not exist yet (depends on an earlier change)`,
            diff: `service ${spec.name}: depends on an earlier change\n`,
          };
        throw new PlanError(`unit ${unit} not found`);
      }
      const cmds: string[] = [];
      const why: string[] = [];
      if (spec.enabled !== undefined) {
        const isEnabled =
          enabled === 'enabled' || enabled === 'static' || enabled === 'alias' || enabled === 'indirect' || enabled === 'generated';
        if (spec.enabled && !isEnabled) {
          cmds.push(`systemctl enable -q ${u}`);
          why.push('enable');
        }
        if (!spec.enabled && enabled === 'enabled') {
          cmds.push(`systemctl disable -q ${u}`);
          why.push('disable');
        }
      }
      if (spec.started !== undefined) {
        const running = active === 'active' || active === 'reloading' || active === 'activating';
        if (spec.started && !running) {
          cmds.push(`systemctl start ${u} || { systemctl status --no-pager -n 20 ${u}; exit 1; }`);
          why.push('start');
        }
        if (!spec.started && running) {
          cmds.push(`systemctl stop ${u}`);
          why.push('stop');
        }
      }
      if (cmds.length === 0) return { changed: false };
      return { changed: true, script: cmds.join(' && '), why: why.join(', '), diff: `service ${spec.name}: ${why.join(', ')}\n` };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// sysctl, persisted in /etc/sysctl.d

export function sysctl(spec: { key: string; value: string | number }): Operation {
  const value = String(spec.value);
  const path = `/etc/sysctl.d/60-hasetup-${spec.key.replace(/[^a-z0-9_.-]/gi, '_')}.conf`;
  const line = `${spec.key} = ${value}`;
  const procPath = `/proc/sys/${spec.key.replace(/\./g, '/')}`;
  return {
    kind: 'sysctl',
    subject: `${spec.key}=${value}`,
    probe: () => `cat ${shq(procPath)} 2>/dev/null || echo '?'; echo; cat ${shq(path)} 2>/dev/null || echo absent`,
    plan(state) {
      const [live = '', , persisted = ''] = lines(state).map((l) => l.trim().replace(/\s+/g, ' '));
      const norm = (s: string) => s.trim().replace(/\s+/g, ' ');
      const liveOk = norm(live) === norm(value);
      const fileOk = persisted === line;
      if (liveOk && fileOk) return { changed: false };
      return {
        changed: true,
        script: `printf '%s\\n' ${shq(line)} > ${shq(path)} && sysctl -q -w ${shq(`${spec.key}=${value}`)}`,
        why: [liveOk ? '' : `live ${live} -> ${value}`, fileOk ? '' : 'persist'].filter(Boolean).join(', '),
        diff: `sysctl ${spec.key}: ${live} -> ${value}\n`,
      };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// users and groups

export function group(spec: { name: string; system?: boolean }): Operation {
  return {
    kind: 'group',
    subject: spec.name,
    probe: () => `getent group ${shq(spec.name)} >/dev/null && echo present || echo absent`,
    plan(state) {
      if (state.trim() === 'present') return { changed: false };
      return {
        changed: true,
        script: `groupadd ${spec.system ? '--system ' : ''}${shq(spec.name)}`,
        why: 'absent',
        diff: `group ${spec.name}: created\n`,
      };
    },
  };
}

export function user(spec: { name: string; group?: string; system?: boolean; home?: string; shell?: string }): Operation {
  const shell = spec.shell ?? (spec.system ? '/usr/sbin/nologin' : '/bin/sh');
  const home = spec.home ?? (spec.system ? '/nonexistent' : `/home/${spec.name}`);
  return {
    kind: 'user',
    subject: spec.name,
    probe: () => `getent passwd ${shq(spec.name)} || echo absent`,
    plan(state) {
      const s = state.trim();
      if (s !== 'absent' && s !== '') {
        const f = s.split(':');
        if (f[5] === home && f[6] === shell) return { changed: false };
        return {
          changed: true,
          script: `usermod -d ${shq(home)} -s ${shq(shell)} ${shq(spec.name)}`,
          why: 'home/shell differ',
          diff: `user ${spec.name}: home ${f[5]} -> ${home}, shell ${f[6]} -> ${shell}\n`,
        };
      }
      const args = [
        spec.system ? '--system' : '--create-home',
        `--home-dir ${shq(home)}`,
        `--shell ${shq(shell)}`,
        spec.group ? `--gid ${shq(spec.group)}` : '--user-group',
      ];
      if (spec.system) args.push('--no-create-home');
      return { changed: true, script: `useradd ${args.join(' ')} ${shq(spec.name)}`, why: 'absent', diff: `user ${spec.name}: created\n` };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// command: the only non-declarative escape hatch, guarded by creates / unless.

export function command(spec: { script: string; creates?: string; unless?: string; describe?: string }): Operation {
  if (!spec.creates && !spec.unless)
    throw new Error(`command "${spec.describe ?? spec.script}" needs a creates or unless guard to be idempotent`);
  return {
    kind: 'command',
    subject: spec.describe ?? spec.script.split('\n')[0],
    probe: () =>
      [
        spec.creates ? `[ -e ${shq(spec.creates)} ] && echo created || echo missing` : 'echo missing',
        spec.unless ? `(${spec.unless}) </dev/null >/dev/null 2>&1 && echo pass || echo fail` : 'echo fail',
      ].join('; '),
    plan(state) {
      const [c = '', u = ''] = lines(state).map((l) => l.trim());
      if (c === 'created' || u === 'pass') return { changed: false };
      return {
        changed: true,
        script: spec.script,
        why: spec.creates ? `${spec.creates} missing` : 'guard failed',
        diff: `run: ${spec.describe ?? spec.script.split('\n')[0]}\n`,
      };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// link: a symbolic link, switched atomically (a new link renamed over the old one)

export function link(spec: { path: string; target: string }): Operation {
  const p = shq(spec.path);
  return {
    kind: 'link',
    subject: `${spec.path} -> ${spec.target}`,
    probe: () => `if [ -L ${p} ]; then echo "link $(readlink ${p})"; elif [ -e ${p} ]; then echo other; else echo absent; fi`,
    plan(state) {
      const s = state.trim();
      if (s === `link ${spec.target}`) return { changed: false };
      if (s === 'other') throw new PlanError(`${spec.path} exists and is not a symbolic link`);
      const was = s.startsWith('link ') ? s.slice(5) : 'absent';
      return {
        changed: true,
        script: `ln -sfn ${shq(spec.target)} ${shq(`${spec.path}.hasetup-new`)} && mv -fT ${shq(`${spec.path}.hasetup-new`)} ${p}`,
        why: `${was} -> ${spec.target}`,
        diff: `link ${spec.path}: ${was} -> ${spec.target}\n`,
      };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// absent: files or folders that must not exist (what a role put there before, and no longer wants)

export function absent(spec: { paths: string[]; describe?: string }): Operation {
  const ps = spec.paths.map(shq);
  return {
    kind: 'absent',
    subject: spec.describe ?? spec.paths.join(' '),
    probe: () => ps.map((p) => `if [ -e ${p} ] || [ -L ${p} ]; then echo ${p}; fi`).join('; '),
    plan(state) {
      const present = lines(state)
        .map((l) => l.trim())
        .filter(Boolean);
      if (present.length === 0) return { changed: false };
      return {
        changed: true,
        script: `rm -rf -- ${present.join(' ')}`,
        why: `remove ${present.join(' ')}`,
        diff: present.map((p) => `remove ${p}\n`).join(''),
      };
    },
  };
}
