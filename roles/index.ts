// The roles, in the order `hasetup apply` runs them on each host. A role is a folder here (index.ts:
// defaults, tasks, handlers; templates/*.njk) and one line below; everything else (which packages
// and services the facts read, what `hasetup status` shows, --tags, --help) follows from it.
import type { RoleEntry } from '../cli/engine/api.ts';

export const ROLES: readonly RoleEntry[] = [
  { name: 'common', load: () => import('./common/index.ts') },
  { name: 'firewall', load: () => import('./firewall/index.ts') },
  { name: 'runtime', load: () => import('./runtime/index.ts') },
  { name: 'proxy', load: () => import('./proxy/index.ts') },
  { name: 'vrrp', load: () => import('./vrrp/index.ts') },
  { name: 'app', load: () => import('./app/index.ts') },
  { name: 'apache', load: () => import('./apache/index.ts') },
  { name: 'mysql', load: () => import('./mysql/index.ts') },
];

export const ROLE_NAMES = ROLES.map((r) => r.name);

/** What commands that work on the web nodes (deploy, apply's deploy step, the capacity probe) need of the
 * web tier: the releases' folders, the PHP-FPM unit and socket, the site a deploy sends (roles/web.ts). */
export { CURRENT, FPM_POOL, FPM_SOCKET, FPM_UNIT, RELEASES_DIR, servesRelease, siteSource } from './web.ts';

/** The cluster's concurrency as the roles size it (apply prints it, status compares with it). */
export const loadSizing = () => import('./sizing.ts');
/** The same for `hasetup status`, which compares it with what the hosts have now. */
export { clusterSizing } from './sizing.ts';
