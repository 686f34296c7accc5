// Debian's way of switching Apache modules, configuration snippets and sites on and off: a symlink
// in /etc/apache2/{mods,conf,sites}-enabled to the file in *-available, made by a2enmod & co. The
// probe reads the links (no need for Apache to be running, or even installed in --check mode).
import { PlanError, shq, type Operation } from '../../cli/engine/api.ts';

export type A2Kind = 'mod' | 'conf' | 'site';

const DIRS: Record<A2Kind, { dir: string; ext: string; enable: string; disable: string }> = {
  mod: { dir: 'mods', ext: 'load', enable: 'a2enmod', disable: 'a2dismod' },
  conf: { dir: 'conf', ext: 'conf', enable: 'a2enconf', disable: 'a2disconf' },
  site: { dir: 'sites', ext: 'conf', enable: 'a2ensite', disable: 'a2dissite' },
};

export interface A2Spec {
  kind: A2Kind;
  enable?: string[];
  disable?: string[];
}

/**
 * Enables and disables modules, confs or sites. Disabling runs first, so that switching the MPM
 * (disable mpm_prefork, enable mpm_event) does not trip a2enmod's conflict check.
 */
export function apacheEnabled(spec: A2Spec): Operation {
  const d = DIRS[spec.kind];
  const root = '/etc/apache2';
  const enable = spec.enable ?? [];
  const disable = spec.disable ?? [];
  for (const n of [...enable, ...disable])
    if (!/^[A-Za-z0-9_.-]+$/.test(n)) throw new Error(`${spec.kind} name "${n}" is not a plain name`);
  const names = [...enable, ...disable];
  return {
    kind: `apache ${spec.kind}`,
    subject: [...enable.map((n) => `+${n}`), ...disable.map((n) => `-${n}`)].join(' '),
    // one line per name: "NAME enabled|disabled|missing"
    probe: () =>
      names
        .map((n) => {
          const on = shq(`${root}/${d.dir}-enabled/${n}.${d.ext}`);
          const avail = shq(`${root}/${d.dir}-available/${n}.${d.ext}`);
          return `if [ -e ${on} ] || [ -L ${on} ]; then echo ${n} enabled; elif [ -e ${avail} ]; then echo ${n} disabled; else echo ${n} missing; fi`;
        })
        .join('; '),
    plan(state, ctx) {
      const st = new Map<string, string>();
      for (const line of state.split('\n')) {
        const [n, s] = line.trim().split(/\s+/);
        if (n && s) st.set(n, s);
      }
      const missing = enable.filter((n) => (st.get(n) ?? 'missing') === 'missing');
      const toEnable = enable.filter((n) => st.get(n) !== 'enabled');
      const toDisable = disable.filter((n) => st.get(n) === 'enabled');
      if (toEnable.length === 0 && toDisable.length === 0) return { changed: false };
      if (missing.length && !ctx.earlierChange)
        throw new PlanError(`apache ${spec.kind} ${missing.join(', ')}: not available in ${root}/${d.dir}-available`);
      const cmds: string[] = [];
      if (toDisable.length) cmds.push(`${d.disable} -q ${spec.kind === 'mod' ? '-f ' : ''}${toDisable.join(' ')}`);
      if (toEnable.length) cmds.push(`${d.enable} -q ${toEnable.join(' ')}`);
      const why = [...toDisable.map((n) => `disable ${n}`), ...toEnable.map((n) => `enable ${n}`)].join(', ');
      return { changed: true, script: cmds.join(' && '), why, diff: `apache ${spec.kind}s: ${why}\n` };
    },
  };
}
