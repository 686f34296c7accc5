// The faults the failover test injects, each with its undoing. Every fault first arms an undo on
// the host itself (a systemd timer, 120 s), so that a host is restored even if the controller is cut
// off or dies halfway; the test's own undo comes first and disarms it.
import type { Inventory } from '../../inventory/types.ts';
import { shq } from '../engine/shell.ts';
import { holdsVip } from '../../roles/lb.ts';
import type { Cluster } from '../cluster.ts';
import { apiCommand, setStateCommand } from '../drain/runtime-api.ts';

export interface Fault {
  /** What it does, for the report: "apache2 stopped on web01". */
  what: string;
  host: string;
  inject(): Promise<void>;
  undo(): Promise<void>;
}

const SAFETY_SEC = 120;
const unit = (name: string) => `hasetup-failover-undo-${name}`;

/** sh: arms the host's own undo (a transient timer running `script` in SAFETY_SEC unless disarmed). */
function arm(name: string, script: string): string {
  const u = unit(name);
  return (
    `systemctl stop ${u}.timer ${u}.service 2>/dev/null; systemctl reset-failed ${u}.timer ${u}.service 2>/dev/null; ` +
    `systemd-run --quiet --unit ${u} --timer-property=AccuracySec=1s --on-active=${SAFETY_SEC}s /bin/sh -c ${shq(script)}`
  );
}
const disarm = (name: string) => `systemctl stop ${unit(name)}.timer 2>/dev/null; true`;

function fault(c: Cluster, host: string, name: string, what: string, inject: string, undo: string): Fault {
  return {
    what,
    host,
    inject: async () => void (await c.sh(host, `${arm(name, undo)}\n${inject}`)),
    undo: async () => void (await c.sh(host, `${disarm(name)}\n${undo}`)),
  };
}

/** Apache stopped on a web node. */
export const apacheStopped = (c: Cluster, web: string): Fault =>
  fault(c, web, 'apache', `apache2 stopped on ${web}`, 'systemctl stop apache2', 'systemctl start apache2');

/**
 * A web node's packets to and from the LBs dropped (a table of the test's own, ahead of the
 * firewall's): to the proxies it is a dead machine; SSH from the controller still works.
 */
export function webDropped(c: Cluster, inv: Inventory, web: string): Fault {
  const lbs = inv.hosts
    .filter((h) => h.group === 'lb')
    .map((h) => h.address)
    .join(', ');
  const table = [
    'table inet hasetup_fault {',
    `  chain in { type filter hook input priority -10; policy accept; ip saddr { ${lbs} } drop; }`,
    `  chain out { type filter hook output priority -10; policy accept; ip daddr { ${lbs} } drop; }`,
    '}',
  ].join('\n');
  const remove = 'nft delete table inet hasetup_fault 2>/dev/null; true';
  return fault(
    c,
    web,
    'drop',
    `${web}'s packets to and from the LBs dropped`,
    `${remove}\nprintf '%s\\n' ${shq(table)} | nft -f -`,
    remove,
  );
}

/**
 * A web node drained on one LB (its runtime API: no new request goes to it there; the configuration
 * is not touched, so a reload also ends it): the capacity scenario's cluster of one web node.
 */
export const webDrainedOn = (c: Cluster, lb: string, web: string): Fault =>
  fault(
    c,
    lb,
    `drain-${web}`,
    `${web} drained on ${lb}`,
    apiCommand(setStateCommand(web, 'drain')),
    apiCommand(setStateCommand(web, 'ready')),
  );

/** An LB killed: its VRRP daemon, then its proxy; `vipLeftMs` once injected. */
export interface LbKill extends Fault {
  /** How long after its VRRP daemon died the VIP left the LB (null: it had not within 2 s). */
  vipLeftMs?: number | null;
}

/**
 * An LB's VRRP daemon and proxy killed with SIGKILL, and kept down (their units masked and told not to
 * restart until the undo, or systemd would start them again): a machine that died. The VRRP daemon
 * first; the proxy once the VIP has left the host (the unit's stop command takes it off: what this
 * fault proves), or 2 s later if it has not: how long the VIP stayed after its daemon died is measured
 * on the host.
 */
export function lbKilled(c: Cluster, inv: Inventory, lb: string, units: { proxy: string; vrrp: string }): LbKill {
  const both = `${units.vrrp}.service ${units.proxy}.service`;
  const has = holdsVip(inv);
  // A runtime mask does not hold a unit whose file is in /etc (the bundled engine's): a runtime drop-in
  // saying Restart=no does, for both engines (keepalived's unit restarts on a failure too).
  const dirs = [units.vrrp, units.proxy].map((u) => `/run/systemd/system/${u}.service.d`);
  const dropIns = dirs.map((d) => `${d}/zz-hasetup-fault.conf`);
  const noRestart = dirs.map((d, i) => `mkdir -p ${d} && printf '[Service]\\nRestart=no\\n' > ${dropIns[i]}`).join(' && ');
  const undo =
    `rm -f ${dropIns.join(' ')}; rmdir ${dirs.join(' ')} 2>/dev/null; systemctl unmask --runtime --quiet ${both}; systemctl daemon-reload; ` +
    `systemctl reset-failed ${both} 2>/dev/null; systemctl start ${units.proxy}.service && systemctl start ${units.vrrp}.service`;
  const inject = [
    arm('kill', undo),
    `systemctl mask --runtime --quiet ${both}; ${noRestart} && systemctl daemon-reload`,
    `s=$(date +%s%N); systemctl kill -s SIGKILL ${units.vrrp}.service`,
    `i=0; while ${has} && [ $i -lt 400 ]; do i=$((i+1)); sleep 0.005; done`,
    `if ${has}; then echo "vip-left none"; else echo "vip-left $(( ($(date +%s%N) - s) / 1000000 ))"; fi`,
    `systemctl kill -s SIGKILL ${units.proxy}.service; true`,
  ].join('\n');
  const f: LbKill = {
    what: `${units.vrrp} and ${units.proxy} killed (SIGKILL) on ${lb}`,
    host: lb,
    inject: async () => {
      const m = /vip-left (\d+|none)/.exec(await c.sh(lb, inject));
      f.vipLeftMs = m && m[1] !== 'none' ? Number(m[1]) : null;
    },
    undo: async () => void (await c.sh(lb, `${disarm('kill')}\n${undo}`)),
  };
  return f;
}

/** An LB's services stopped the way an operator stops them: the VRRP daemon (it hands the VIP over), then the proxy. */
export const lbStopped = (c: Cluster, lb: string, units: { proxy: string; vrrp: string }): Fault =>
  fault(
    c,
    lb,
    'stop',
    `${units.vrrp} and ${units.proxy} stopped on ${lb}`,
    `systemctl stop ${units.vrrp}.service && systemctl stop ${units.proxy}.service`,
    `systemctl start ${units.proxy}.service && systemctl start ${units.vrrp}.service`,
  );

/**
 * An LB's interface (the VIP's) taken down for `seconds`: the host brings it up again by itself (the
 * controller's SSH to it goes through that link); the undo makes sure it is up.
 */
export function lbLinkDown(c: Cluster, inv: Inventory, lb: string, seconds: number): Fault {
  const ifc = shq(inv.vip.interface);
  const u = unit('link');
  return {
    what: `${lb}'s interface ${inv.vip.interface} down for ${seconds} s`,
    host: lb,
    inject: async () => {
      // the link comes back by itself; it goes down only once this command has answered
      await c.sh(
        lb,
        `${arm('linksafe', `ip link set ${ifc} up`)}\n` +
          `systemctl stop ${u}.timer 2>/dev/null; systemctl reset-failed ${u}.timer ${u}.service 2>/dev/null; ` +
          `systemd-run --quiet --unit ${u} --timer-property=AccuracySec=100ms --on-active=${seconds}s ip link set ${ifc} up\n` +
          `nohup sh -c 'sleep 0.2; ip link set ${ifc} down' >/dev/null 2>&1 &`,
      );
    },
    undo: async () => {
      // reachable again once the host brought its link back
      const deadline = Date.now() + (seconds + 60) * 1000;
      for (;;) {
        try {
          await c.sh(lb, `ip link set ${ifc} up; ${disarm('linksafe')}`);
          return;
        } catch (e) {
          if (Date.now() > deadline) throw e;
          await new Promise((r) => setTimeout(r, 1000));
        }
      }
    },
  };
}

/**
 * VRRP from a peer dropped on an LB (a table of the test's own, ahead of the firewall's): done on both
 * LBs, each hears no advert from the other while both still reach the clients and the web nodes, the
 * partition that makes two masters.
 */
export function vrrpBlocked(c: Cluster, lb: string, peer: string): Fault {
  const table = [
    'table inet hasetup_partition {',
    `  chain in { type filter hook input priority -10; policy accept; ip saddr ${peer} ip protocol 112 drop; }`,
    '}',
  ].join('\n');
  const remove = 'nft delete table inet hasetup_partition 2>/dev/null; true';
  return fault(c, lb, 'partition', `VRRP from ${peer} dropped on ${lb}`, `${remove}\nprintf '%s\\n' ${shq(table)} | nft -f -`, remove);
}

/** MariaDB stopped on a DB host. */
export const mariadbStopped = (c: Cluster, db: string): Fault =>
  fault(c, db, 'mariadb', `MariaDB stopped on ${db}`, 'systemctl stop mariadb', 'systemctl start mariadb');

/**
 * The faults injected and not undone yet, undone in reverse order: at the end of a scenario, and on
 * an error or an interruption.
 */
export class Undo {
  private readonly active: Fault[] = [];
  constructor(private readonly log: (msg: string) => void) {}

  async inject(f: Fault): Promise<void> {
    this.active.push(f);
    await f.inject();
  }

  async undo(f: Fault): Promise<void> {
    const i = this.active.indexOf(f);
    if (i < 0) return;
    await f.undo();
    this.active.splice(i, 1);
  }

  /** Undoes everything still injected; returns what could not be undone. */
  async all(): Promise<string[]> {
    const failed: string[] = [];
    for (const f of [...this.active].reverse()) {
      this.log(`undoing: ${f.what}`);
      try {
        await this.undo(f);
      } catch (e) {
        failed.push(`${f.what}: ${(e as Error).message} (the host undoes it by itself within ${SAFETY_SEC} s)`);
      }
    }
    return failed;
  }

  get pending(): string[] {
    return this.active.map((f) => f.what);
  }
}
