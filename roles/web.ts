// What the web tier's roles (apache, app, mysql's demo schema) and the commands that work on the web
// nodes (deploy, apply's deploy step) share: where the releases live, the link the vhost serves, the
// PHP-FPM unit and socket, the credentials file, the demo application's folder, and whether the
// inventory runs PHP. Commands reach it through the registry (roles/index.ts), which re-exports what they use.
import { join } from 'node:path';
import { findRepoRoot, type Inventory } from '../cli/engine/api.ts';

/** Debian 12's PHP. */
export const PHP_VERSION = '8.2';
export const FPM_UNIT = `php${PHP_VERSION}-fpm`;
export const FPM_BIN = `php-fpm${PHP_VERSION}`;
export const FPM_DIR = `/etc/php/${PHP_VERSION}/fpm`;
/** The site's pool: its socket (Apache's proxy_fcgi talks to it), its user (owns no file of the site). */
export const FPM_SOCKET = '/run/php/hasetup-fpm.sock';
/** The site's pool file (pm.max_children among its settings). */
export const FPM_POOL = `${FPM_DIR}/pool.d/hasetup.conf`;
export const FPM_USER = 'hasetup-app';

/** The web root: the health file and the node page stay here; releases below it. */
export const WEB_ROOT = '/var/www/hasetup';
/** A folder per release, named <UTC time>-<content hash>. */
export const RELEASES_DIR = `${WEB_ROOT}/releases`;
/** The link the vhost serves (DocumentRoot), switched atomically by a deploy. */
export const CURRENT = `${WEB_ROOT}/current`;

/** The database's host, name, user and password for the application (INI, mode 0640, group FPM_USER). */
export const DB_CONFIG = '/etc/hasetup/database.ini';

/** The demo application, deployed when the inventory names no site (roles.app.source). */
export const DEMO_SITE = join(findRepoRoot(), 'roles', 'app', 'demo');

/** PHP-FPM runs on the web nodes. */
export const runsPhp = (inv: Inventory): boolean => inv.roles.app.php !== false;
/** The vhost serves a deployed release (the user's site, or the demo application with PHP). */
export const servesRelease = (inv: Inventory): boolean => runsPhp(inv) || inv.roles.app.source !== undefined;
/** The demo application is what the web nodes serve (its tables are made by the mysql role). */
export const runsDemo = (inv: Inventory): boolean => runsPhp(inv) && inv.roles.app.source === undefined;
/** The site folder a deploy sends. */
export const siteSource = (inv: Inventory): string => inv.roles.app.source ?? DEMO_SITE;

/** The pool's status page and ping, answered from the node's loopback only. */
export const FPM_STATUS_PATH = '/fpm-status';
export const FPM_PING_PATH = '/fpm-ping';
