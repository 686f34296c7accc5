// The engine's public face for roles: everything a role in roles/ may import, and nothing else under
// cli/ or inventory/ (the types of a role and its context, the operations, shell quoting, the folder
// of the engine's records on a host, the checkout's root for what a role ships from it; of the
// inventory, its shapes and the capacity model that loading checks and the sizing follows).
export type { Role, RoleContext, Task, Handler, Serial, Installs } from './role.ts';
export type { Operation, Plan, PlanContext, FileSpec, PackagesOptions } from './ops.ts';
export { PlanError, file, directory, packages, service, sysctl, user, group, command, link, absent } from './ops.ts';
export type { Facts, Interface } from './facts.ts';
export { RECORDS_DIR, STATE_DIR } from './facts.ts';
export { findRepoRoot } from '../root.ts';
export { shq } from './shell.ts';
export type { RoleEntry } from './registry.ts';
export type { Host, Inventory } from '../../inventory/types.ts';
export { apacheHeadroom, CAPACITY, dbRequired, dynamicMargin, serverMaxconn, servingLbs } from '../../inventory/capacity.ts';
