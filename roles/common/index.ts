// Role common: the base every cluster host shares.
//   1. who it is: hostname, and /etc/hosts naming every cluster host
//   2. base packages, time sync
//   3. kernel settings (on the LBs: bind the VIP before holding it, a deeper accept queue)
//   4. file-descriptor limits for the services (the proxy holds two descriptors per connection)
import {
  file,
  packages,
  service,
  sysctl,
  command,
  directory,
  STATE_DIR,
  type Role,
  type Task,
  type Handler,
} from '../../cli/engine/api.ts';

// ---- defaults -------------------------------------------------------------------------------
export const defaults = {
  basePackages: ['chrony', 'curl', 'ca-certificates', 'iproute2', 'procps'],
  nofile: 65536,
  lbSysctls: { 'net.ipv4.ip_nonlocal_bind': 1, 'net.core.somaxconn': 4096, 'net.ipv4.tcp_max_syn_backlog': 4096 },
};

const role: Role = {
  name: 'common',
  description: 'hostname, /etc/hosts, base packages, time sync, sysctls, file-descriptor limits',
  appliesTo: () => true,
  // chrony runs except in containers, whose clock is the machine's: not a service every host must run
  installs: () => ({ packages: defaults.basePackages }),

  // ---- tasks ---------------------------------------------------------------------------------
  tasks(ctx) {
    const { host, facts } = ctx;
    const tasks: Task[] = [
      { name: 'hostname file', op: file({ path: '/etc/hostname', content: `${host.name}\n` }) },
      {
        name: 'hostname',
        op: command({ describe: `hostname ${host.name}`, script: `hostname ${host.name}`, unless: `[ "$(hostname)" = ${host.name} ]` }),
      },
      { name: '/etc/hosts', op: file({ path: '/etc/hosts', content: ctx.template('hosts.njk') }) },
      { name: 'base packages', op: packages(defaults.basePackages) },
      // hasetup's own records on the host (the last apply, handlers pending, drain records, the firewall's
      // rollback): for root alone
      { name: STATE_DIR, op: directory({ path: STATE_DIR, mode: '0700' }) },
    ];
    // A container takes its clock from the machine it runs on: chrony cannot (and need not) run.
    if (!facts.container) tasks.push({ name: 'time sync (chrony)', op: service({ name: 'chrony', enabled: true, started: true }) });
    if (host.group === 'lb')
      for (const [key, value] of Object.entries(defaults.lbSysctls)) tasks.push({ name: `sysctl ${key}`, op: sysctl({ key, value }) });
    tasks.push(
      {
        name: 'nofile limit (login sessions)',
        op: file({ path: '/etc/security/limits.d/60-hasetup.conf', content: ctx.template('limits.conf.njk', { nofile: defaults.nofile }) }),
      },
      { name: 'systemd drop-in folder', op: directory({ path: '/etc/systemd/system.conf.d' }) },
      {
        name: 'nofile limit (services)',
        op: file({
          path: '/etc/systemd/system.conf.d/60-hasetup-limits.conf',
          content: ctx.template('system-limits.conf.njk', { nofile: defaults.nofile }),
        }),
        notify: ['reexec systemd'],
      },
    );
    return tasks;
  },

  // ---- handlers ------------------------------------------------------------------------------
  handlers(): Handler[] {
    return [{ name: 'reexec systemd', script: 'systemctl daemon-reexec' }];
  },
};

export default role;
