// What a role is: a folder roles/<name>/ with index.ts (defaults, tasks, handlers, in runbook order)
// and templates/*.njk. The engine asks a role for its tasks once it knows the host and its facts.
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
  /** Renders roles/<this role>/templates/<name> with nunjucks (host, inv, facts and vars in scope). */
  template(name: string, vars?: Record<string, unknown>): string;
}

export interface Task {
  name: string;
  op: Operation;
  /** Handlers to run, once, at the end of the role if this task changed something. */
  notify?: string[];
}

export interface Handler {
  name: string;
  /** sh script run as root on the host. */
  script: string;
  /** Run on one host of this group at a time, across the whole run (the LBs: the VIP never goes dark). */
  serial?: Group;
  /** sh script run on each other host of the `serial` group before this handler runs; the handler waits (bounded) until it exits 0. */
  peerReady?: string;
}

export interface Role {
  name: string;
  description: string;
  appliesTo(host: Host, inv: Inventory): boolean;
  tasks(ctx: RoleContext): Task[];
  handlers?(ctx: RoleContext): Handler[];
}

/** The checkout's roles/ folder. */
export const ROLES_DIR = process.env.HASETUP_ROLES_DIR ?? join(findRepoRoot(), 'roles');

const envs = new Map<string, nunjucks.Environment>();

export function renderTemplate(role: string, name: string, scope: Record<string, unknown>): string {
  let env = envs.get(role);
  if (!env) {
    env = new nunjucks.Environment(new nunjucks.FileSystemLoader(join(ROLES_DIR, role, 'templates')), {
      autoescape: false,
      throwOnUndefined: true,
      trimBlocks: true,
      lstripBlocks: true,
    });
    envs.set(role, env);
  }
  return env.render(name, scope);
}

export function roleContext(role: string, host: Host, inv: Inventory, facts: Facts): RoleContext {
  return {
    host,
    inv,
    facts,
    hosts: (g) => (g ? inv.hosts.filter((h) => h.group === g) : inv.hosts),
    template: (name, vars = {}) => renderTemplate(role, name, { host, inv, facts, ...vars }),
  };
}
