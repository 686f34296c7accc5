// Role firewall: nftables, default drop on input, each host letting in only what it must.
//   every host: SSH only from the admin CIDRs; established traffic, loopback and ping
//   lb:  the service port from anywhere; the stats port (when it is its own) from the admin CIDRs;
//        VRRP (IP protocol 112, multicast or unicast) only from the other LB
//   web: port 80 only from the LBs and the admin CIDRs
//   db:  3306 only from the web nodes and the other database hosts (replication)
// The ruleset is one table of ours (inet hasetup), swapped atomically with `nft -f`; other tables
// are left alone. A change arms a rollback on the host before it loads the new rules; hasetup
// must then reconnect over SSH within the deadline to confirm it, or the host restores the old
// rules by itself: a wrong admin CIDR cannot lock the controller out.
import { createHash } from 'node:crypto';
import type { Role } from '../../cli/engine/role.ts';
import type { Operation } from '../../cli/engine/ops.ts';
import { packages, service } from '../../cli/engine/ops.ts';

// ---- defaults -------------------------------------------------------------------------------
export const defaults = {
  stateDir: '/var/lib/hasetup/firewall',
  /** Seconds the host waits for hasetup's confirming reconnect before it rolls back by itself. */
  rollbackAfterSec: 30,
  mysqlPort: 3306,
  webPort: 80,
};

/** The table's comment carries a hash of its rules: the probe compares it with the wanted one. */
export function withHash(rules: string): { text: string; hash: string } {
  const hash = createHash('sha256').update(rules).digest('hex').slice(0, 16);
  return { text: rules.replace('@@HASH@@', hash), hash };
}

/** Loads a ruleset with a self-firing rollback, confirmed by hasetup's reconnect. */
export function nftRuleset(spec: { content: string; hash: string; rollbackAfterSec: number; stateDir: string }): Operation {
  const d = spec.stateDir;
  return {
    kind: 'nftables',
    subject: 'table inet hasetup',
    probe: () =>
      `nft list table inet hasetup 2>/dev/null | grep -o 'hasetup:[0-9a-f]*' | head -n1; echo; ` +
      `grep -o 'hasetup:[0-9a-f]*' /etc/nftables.conf 2>/dev/null | head -n1`,
    plan(state) {
      const [live = '', , persisted = ''] = state.split('\n').map((l) => l.trim());
      const want = `hasetup:${spec.hash}`;
      if (live === want && persisted === want) return { changed: false };
      const why = live === want ? 'persist the loaded rules in /etc/nftables.conf' : live ? 'rules differ' : 'no hasetup table loaded';
      const rollback = [
        `nft delete table inet hasetup 2>/dev/null`,
        `[ -s ${d}/before.nft ] && nft -f ${d}/before.nft`,
        `if [ -f ${d}/nftables.conf.before ]; then cp -p ${d}/nftables.conf.before /etc/nftables.conf; fi`,
        `touch ${d}/rolled-back`,
      ].join('\n');
      const script = [
        'set -e',
        `mkdir -p ${d}`,
        `cat > ${d}/new.nft`,
        `nft -c -f ${d}/new.nft || { echo "nftables rejected the new rules"; exit 3; }`,
        `nft list table inet hasetup > ${d}/before.nft 2>/dev/null || : > ${d}/before.nft`,
        `if [ -f /etc/nftables.conf ]; then cp -p /etc/nftables.conf ${d}/nftables.conf.before; else rm -f ${d}/nftables.conf.before; fi`,
        `cat > ${d}/rollback.sh <<'HASETUP_RB'\n${rollback}\nHASETUP_RB`,
        `rm -f ${d}/rolled-back`,
        `systemctl stop hasetup-fw-rollback.timer hasetup-fw-rollback.service 2>/dev/null || true`,
        `systemctl reset-failed hasetup-fw-rollback.service hasetup-fw-rollback.timer 2>/dev/null || true`,
        `systemd-run --quiet --unit hasetup-fw-rollback --timer-property=AccuracySec=1s --on-active=${spec.rollbackAfterSec}s /bin/sh ${d}/rollback.sh`,
        `nft -f ${d}/new.nft`,
        `cp ${d}/new.nft /etc/nftables.conf.hasetup-tmp && chmod 0755 /etc/nftables.conf.hasetup-tmp && mv -f /etc/nftables.conf.hasetup-tmp /etc/nftables.conf`,
      ].join('\n');
      return {
        changed: true,
        script,
        stdin: spec.content,
        why,
        diff: `nftables: load table inet hasetup (${want})\n${spec.content}`,
        confirm: {
          script: `systemctl stop hasetup-fw-rollback.timer 2>/dev/null; [ ! -e ${d}/rolled-back ] || { echo 'the rollback already fired'; exit 1; }`,
          rollbackAfterSec: spec.rollbackAfterSec,
          rolledBack: `[ -e ${d}/rolled-back ]`,
        },
      };
    },
  };
}

const role: Role = {
  name: 'firewall',
  description: 'nftables: default drop, SSH from the admin CIDRs, each tier reachable only from the tier in front of it',
  appliesTo: () => true,

  // ---- tasks ---------------------------------------------------------------------------------
  tasks(ctx) {
    const { host, inv } = ctx;
    const proxy = inv.roles.proxy;
    const others = (g: 'lb' | 'web' | 'db') => ctx.hosts(g).filter((h) => h.name !== host.name).map((h) => h.address);
    const rules = ctx.template('nftables.conf.njk', {
      admin: inv.roles.firewall.adminCidrs,
      sshPort: host.ssh.port,
      lbPeers: others('lb'),
      lbs: ctx.hosts('lb').map((h) => h.address),
      webs: ctx.hosts('web').map((h) => h.address),
      dbPeers: others('db'),
      servicePort: proxy.port,
      statsPort: proxy.stats.port !== proxy.port ? proxy.stats.port : null,
      webPort: defaults.webPort,
      mysqlPort: defaults.mysqlPort,
    });
    const { text, hash } = withHash(rules);
    return [
      { name: 'nftables package', op: packages(['nftables']) },
      { name: 'ruleset (atomic, with rollback)', op: nftRuleset({ content: text, hash, rollbackAfterSec: defaults.rollbackAfterSec, stateDir: defaults.stateDir }) },
      { name: 'rules loaded at boot', op: service({ name: 'nftables', enabled: true }) },
    ];
  },
};

export default role;
