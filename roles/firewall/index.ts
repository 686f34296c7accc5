// Role firewall: nftables, default drop on input, each host letting in only what it must.
//   every host: SSH only from the admin CIDRs; established traffic, loopback and ping
//   lb:  the service port (and HTTPS's) from anywhere; the stats port (when it is its own) from the admin CIDRs;
//        VRRP (IP protocol 112, multicast or unicast) only from the other LB
//   web: port 80 only from the LBs and the admin CIDRs
//   db:  3306 only from the web nodes and the other database hosts (replication)
// The ruleset is one table of ours (inet hasetup), swapped atomically with `nft -f`; other tables
// are left alone. A change arms a rollback on the host before it loads the new rules; hasetup
// must then reconnect over SSH within the deadline to confirm it, or the host restores the old
// rules by itself: a wrong admin CIDR cannot lock the controller out.
import { packages, service, type Role } from '../../cli/engine/api.ts';
import { nftRuleset, withHash } from './nft.ts';

// ---- defaults -------------------------------------------------------------------------------
export const defaults = {
  stateDir: '/var/lib/hasetup/firewall',
  /** Seconds the host waits for hasetup's confirming reconnect before it rolls back by itself. */
  rollbackAfterSec: 30,
  mysqlPort: 3306,
  webPort: 80,
};

const role: Role = {
  name: 'firewall',
  description: 'nftables: default drop, SSH from the admin CIDRs, each tier reachable only from the tier in front of it',
  appliesTo: () => true,
  // nftables.service only loads the rules at boot (the status reads the loaded table instead)
  installs: () => ({ packages: ['nftables'] }),

  // ---- tasks ---------------------------------------------------------------------------------
  tasks(ctx) {
    const { host, inv } = ctx;
    const proxy = inv.roles.proxy;
    const others = (g: 'lb' | 'web' | 'db') =>
      ctx
        .hosts(g)
        .filter((h) => h.name !== host.name)
        .map((h) => h.address);
    const rules = ctx.template('nftables.conf.njk', {
      admin: inv.roles.firewall.adminCidrs,
      sshPort: host.ssh.port,
      lbPeers: others('lb'),
      lbs: ctx.hosts('lb').map((h) => h.address),
      webs: ctx.hosts('web').map((h) => h.address),
      dbPeers: others('db'),
      servicePort: proxy.port,
      httpsPort: proxy.tls?.port ?? null,
      statsPort: proxy.stats.port !== proxy.port ? proxy.stats.port : null,
      webPort: defaults.webPort,
      mysqlPort: defaults.mysqlPort,
    });
    const { text, hash } = withHash(rules);
    return [
      { name: 'nftables package', op: packages(['nftables']) },
      {
        name: 'ruleset (atomic, with rollback)',
        op: nftRuleset({ content: text, hash, rollbackAfterSec: defaults.rollbackAfterSec, stateDir: defaults.stateDir }),
      },
      { name: 'rules loaded at boot', op: service({ name: 'nftables', enabled: true }) },
    ];
  },
};

export default role;
