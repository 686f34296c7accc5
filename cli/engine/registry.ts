// Loading the roles of roles/index.ts: each entry names a role and how to import it, so that a
// command that only needs the names (--help, --tags) loads none of them.
import type { Role } from './role.ts';

export interface RoleEntry {
  name: string;
  load(): Promise<{ default: Role }>;
  /** The role's folder, for its templates (default: roles/<name> in the checkout). */
  dir?: string;
}

/** A loaded role, with the folder its templates come from. */
export type LoadedRole = Role & { dir?: string };

export async function loadRoles(entries: readonly RoleEntry[]): Promise<LoadedRole[]> {
  const seen = new Set<string>();
  const roles: LoadedRole[] = [];
  for (const e of entries) {
    if (seen.has(e.name)) throw new Error(`role ${e.name} is listed twice in the registry`);
    seen.add(e.name);
    const role = (await e.load()).default;
    if (!role || role.name !== e.name) throw new Error(`the registry's role "${e.name}" loads a role named "${role?.name}"`);
    roles.push(e.dir ? { ...role, dir: e.dir } : role);
  }
  return roles;
}
