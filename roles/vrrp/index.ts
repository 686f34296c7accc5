// Role vrrp: keepalived.conf on the load balancers, read by both runtimes, so that the two LBs share
// the VIP.
//   1. one instance: the inventory's router id, priorities (default 150 for the first LB, 100 for
//      the second), advertisement interval and version (default VRRPv3 every 0.2 s: a dead master is
//      replaced in about 0.72 s; see inventory/README.md), PASS authentication with version 2
//      (secrets file), unicast to the peer when `vrrp.unicast` is set
//   2. a tracker of the local proxy: while it does not answer, the LB's priority drops below its
//      peer's and the VIP moves
//   3. every transition logged to the journal; gratuitous ARPs when an LB becomes master
//   4. checked by the runtime itself (hasetup-vrrpd -t, keepalived -t) before it replaces the running
//      file; reloaded on one LB at a time (a reload that keeps the priorities keeps the VIP where it is)
//   5. started on the preferred master first; the apply waits (bounded) until the preferred master
//      holds the VIP, and says so (settle.ts)
import { directory, file, service, user, type Handler, type Role, type Task } from '../../cli/engine/api.ts';
import { runtimeOf, isLb, lbTurn, monitorUrl, VRRP_CONFIG } from '../lb.ts';
import { preferredFirst, vrrpSettled } from './settle.ts';

// ---- defaults -------------------------------------------------------------------------------
export const defaults = {
  /**
   * The tracker: the proxy is asked every second (its monitor frontend, roles/lb.ts monitorUrl); two
   * misses move the VIP, two answers bring it back. The proxy answers it itself in a millisecond; the
   * timeout leaves room for an LB whose CPU the flood it serves has saturated.
   */
  track: { interval: 1, fall: 2, rise: 2, timeout: 2 },
  /**
   * The preferred master (the LB of the highest priority), once it outranks the master again (its link
   * back, its proxy back, a restart), waits this long after it first hears the master before it takes
   * the VIP back: its proxy's health checks and its tracker catch up first, so that it does not take
   * the VIP while it would answer 503. The other LB has none: it takes over from a sick master at once.
   */
  preemptDelay: 5,
  /** Gratuitous ARPs on becoming master, and again this many seconds later. */
  garp: { delay: 1, repeat: 3 },
  /** keepalived runs scripts as this user when it exists, and refuses them otherwise (enable_script_security). */
  keepalivedScriptUser: 'keepalived_script',
  /** The longest an apply waits for the preferred master to hold the VIP (its tracker's rise, its preempt_delay). */
  settleSeconds: 30,
};

/** How far a dead proxy drops an LB's priority: below the other LB's, whatever the two are. */
export function trackWeight(priorities: number[]): number {
  const spread = Math.max(...priorities) - Math.min(...priorities);
  return -Math.min(253, spread + 10);
}

const role: Role = {
  name: 'vrrp',
  description:
    'keepalived.conf for both runtimes: VRRPv3 every 0.2 s, a tracker of the local proxy, transitions to the journal, reload one LB at a time',
  appliesTo: isLb,
  installs: (_h, inv) => ({ services: [runtimeOf(inv).vrrpUnit] }),

  // ---- tasks ---------------------------------------------------------------------------------
  tasks(ctx) {
    const { host, inv } = ctx;
    const lbRuntime = runtimeOf(inv);
    const lbs = ctx.hosts('lb');
    const config = ctx.template('keepalived.conf.njk', {
      vrrp: inv.vrrp,
      vip: inv.vip,
      peers: lbs.filter((h) => h.name !== host.name),
      authPass: inv.secrets.vrrpAuthPass,
      monitorUrl: monitorUrl(inv),
      track: { ...defaults.track, weight: trackWeight(lbs.map((h) => h.priority ?? 100)) },
      garp: defaults.garp,
      preemptDelay: (host.priority ?? 0) === Math.max(...lbs.map((h) => h.priority ?? 0)) ? defaults.preemptDelay : 0,
    });
    const tasks: Task[] = [];
    if (lbRuntime.name === 'haproxy')
      tasks.push({
        name: `user ${defaults.keepalivedScriptUser} (keepalived's scripts)`,
        op: user({ name: defaults.keepalivedScriptUser, system: true }),
      });
    tasks.push(
      { name: '/etc/keepalived', op: directory({ path: '/etc/keepalived' }) },
      {
        name: 'keepalived.conf',
        // the VRRP daemon reads it as its own group; it may hold the VRRP password
        op: file({
          path: VRRP_CONFIG,
          content: config,
          group: lbRuntime.vrrpGroup,
          mode: '0640',
          validate: lbRuntime.vrrpCheck,
          validateName: `${lbRuntime.name === 'haproxy' ? 'keepalived' : 'hasetup-vrrpd'} -t`,
        }),
        notify: ['reload VRRP'],
      },
      {
        // the preferred master first: its peer starts once it holds the VIP (the next task waits for
        // that in the same step), so a fresh cluster's VIP never lands on the other LB first
        name: `${lbRuntime.vrrpUnit} service`,
        op: service({ name: lbRuntime.vrrpUnit, enabled: true, started: true }),
        serial: preferredFirst(host, lbs),
      },
      { name: 'VRRP settled', op: vrrpSettled(inv, host, lbs, lbRuntime.vrrpUnit, defaults.settleSeconds) },
    );
    return tasks;
  },

  // ---- handlers ------------------------------------------------------------------------------
  handlers(ctx): Handler[] {
    const unit = runtimeOf(ctx.inv).vrrpUnit;
    return [
      { name: 'reload VRRP', serial: lbTurn(ctx.inv), script: `if systemctl is-active -q ${unit}; then systemctl reload ${unit}; fi` },
    ];
  },
};

export default role;
