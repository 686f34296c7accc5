// What a role is: a folder roles/<name>/ with index.ts (defaults, tasks, handlers, in runbook order)
// and templates/*.njk, listed once in roles/index.ts. The engine asks a role for its tasks once it
// knows the host and its facts.
import { join } from 'node:path';
import nunjucks from 'nunjucks';
import type { Host, Inventory, Group } from '../../inventory/types.ts';
import type { Facts } from './facts.ts';
import type { Operation } from './ops.ts';
import { findRepoRoot } from '../root.ts';

export interface RoleContext {
  host: Host;
  inv: Inventory;
  facts: Facts;
  /** Hosts of a group, in inventory order. */
  hosts(group?: Group): Host[];
  /** The facts of another host, for a role that declared it in `factsFrom`. */
  factsOf(host: Host): Facts;
  /** Renders roles/<this role>/templates/<name> with nunjucks (host, inv, facts and vars in scope). */
  template(name: string, vars?: Record<string, unknown>): string;
}

/**
 * One host of a group at a time, across the whole run (the LBs, so that the VIP never goes dark):
 * a task's change or a handler waits its turn.
 */
export interface Serial {
  group: Group;
  /** sh script run on each other host of the group before this host's turn; waits (bounded) until it exits 0. */
  peerReady?: string;
  /**
   * sh script printing a number on this host: hosts take their turn lowest first (the VRRP backup
   * before the master). A host waits for every peer of a lower rank to take its turn or to be done
   * with the role.
   */
  rank?: string;
}

export interface Task {
  name: string;
  op: Operation;
  /** Handlers to run, once, at the end of the role if this task changed something. */
  notify?: string[];
  /** The change (not the probe) runs on one host of the group at a time. */
  serial?: Serial;
}

export interface Handler {
  name: string;
  /** sh script run as root on the host. */
  script: string;
  /** Run on one host of this group at a time, across the whole run. */
  serial?: Serial;
}

/** What a role puts on a host: read with the facts (packages, services) and shown by `hasetup status`. */
export interface Installs {
  packages?: string[];
  /** systemd units (without .service) the role runs. */
  services?: string[];
}

export interface Role {
  name: string;
  description: string;
  appliesTo(host: Host, inv: Inventory): boolean;
  /** What this role installs and runs on the host. */
  installs?(host: Host, inv: Inventory): Installs;
  /** Other hosts whose facts the role's tasks read (ctx.factsOf): gathered before its tasks are made. */
  factsFrom?(host: Host, inv: Inventory): Host[];
  /**
   * Roles that must be done on other hosts first: before this role starts on a host, each host of
   * `group` in the run finishes `role` (or fails). E.g. the proxy waits for the web nodes' apache.
   */
  after?: { group: Group; role: string }[];
  tasks(ctx: RoleContext): Task[];
  handlers?(ctx: RoleContext): Handler[];
}

/** The checkout's roles/ folder. */
export const ROLES_DIR = process.env.HASETUP_ROLES_DIR ?? join(findRepoRoot(), 'roles');

const envs = new Map<string, nunjucks.Environment>();

/** Renders roles/<role>/templates/<name> (or <dir>/templates/<name> for a role outside roles/). */
export function renderTemplate(role: string, name: string, scope: Record<string, unknown>, dir = join(ROLES_DIR, role)): string {
  let env = envs.get(dir);
  if (!env) {
    env = new nunjucks.Environment(new nunjucks.FileSystemLoader(join(dir, 'templates')), {
      autoescape: false,
      throwOnUndefined: true,
      trimBlocks: true,
      lstripBlocks: true,
    });
    envs.set(dir, env);
  }
  return env.render(name, scope);
}

export function roleContext(
  role: Role & { dir?: string },
  host: Host,
  inv: Inventory,
  facts: Facts,
  peers: Map<string, Facts> = new Map(),
): RoleContext {
  return {
    host,
    inv,
    facts,
    hosts: (g) => (g ? inv.hosts.filter((h) => h.group === g) : inv.hosts),
    factsOf: (h) => {
      if (h.name === host.name) return facts;
      const f = peers.get(h.name);
      if (!f) throw new Error(`the facts of ${h.name} are not known here (role ${role.name} must name it in factsFrom)`);
      return f;
    },
    template: (name, vars = {}) => renderTemplate(role.name, name, { host, inv, facts, ...vars }, role.dir),
  };
}
