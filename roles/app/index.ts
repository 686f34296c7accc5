// Role app: PHP on the web nodes, the supported way (roles.app.php: false leaves it out).
//   1. Debian's php8.2-fpm with its MariaDB driver (mysqli, PDO) and opcache, installed without
//      starting: Debian's own pool (www) never runs; Apache's event MPM talks to the site's pool over
//      proxy_fcgi (role apache), never mod_php, which would force the prefork MPM
//   2. one pool for the site, as its own system user (who owns no file of the site), pm.max_children
//      sized from the host's memory (roles/sizing.ts) or roles.app.php.max_children; the status page and
//      ping (Apache passes them from the node's loopback only); a slowlog
//   3. opcache on, without a stat per request: releases never change once deployed, and a deploy
//      reloads the pool (see templates/php.ini.njk)
//   4. the database's host, name, user and password in an INI file outside the document root, mode
//      0640, group of the pool's user, never shown in a diff
//   5. every pool file checked with php-fpm -t before it replaces the old one, and again before any
//      reload
// This role runs before apache: the PHP package, installed while apache2 is there, enables its own
// Apache conf for Debian's pool, which the apache role then turns off. The site itself (a release
// under /var/www/hasetup/releases, `current` the vhost serves) is put there by the deploy
// (cli/deploy), which `apply` runs after the roles.
import { absent, directory, file, group, packages, service, user, type Handler, type Role, type Task } from '../../cli/engine/api.ts';
import { defaults as mysqlDefaults } from '../mysql/index.ts';
import {
  DB_CONFIG,
  FPM_BIN,
  FPM_DIR,
  FPM_PING_PATH,
  FPM_POOL,
  FPM_SOCKET,
  FPM_STATUS_PATH,
  FPM_UNIT,
  FPM_USER,
  PHP_VERSION,
  RELEASES_DIR,
  runsPhp,
  WEB_ROOT,
} from '../web.ts';
import { webSizing } from '../sizing.ts';

// ---- defaults -------------------------------------------------------------------------------
export const defaults = {
  packages: [`php${PHP_VERSION}-fpm`, `php${PHP_VERSION}-mysql`, `php${PHP_VERSION}-opcache`],
  pool: FPM_POOL,
  /** Debian's pool: one pool for the site, so it goes. */
  debianPool: `${FPM_DIR}/pool.d/www.conf`,
  ini: `${FPM_DIR}/conf.d/60-hasetup.ini`,
  slowlog: `/var/log/${FPM_UNIT}-hasetup.slow.log`,
  errorLog: `/var/log/${FPM_UNIT}-hasetup.error.log`,
  /** A request slower than this gets its stack in the slowlog. */
  slowlogAfter: '2s',
  /** A request running this long is ended (below the LBs' server timeout of 50 s). */
  terminateAfter: '30s',
  opcacheMb: 128,
};

/**
 * Checks a candidate pool file: php-fpm -t on a main configuration that includes it alone (the
 * running pools are not touched; Debian's www pool may be gone already).
 */
export const VALIDATE_POOL =
  `c=$(mktemp) && { echo '[global]'; echo 'error_log = /dev/null'; echo "include = %s"; } > "$c" && ` +
  `{ ${FPM_BIN} -t -y "$c" 2>&1; rc=$?; rm -f "$c"; [ $rc -eq 0 ]; }`;

const role: Role = {
  name: 'app',
  description: 'PHP-FPM 8.2 for the site: one pool sized from memory, opcache, status and ping on loopback, slowlog, database credentials',
  appliesTo: (host, inv) => host.group === 'web' && runsPhp(inv),
  installs: () => ({ packages: defaults.packages, services: [FPM_UNIT] }),

  // ---- tasks ---------------------------------------------------------------------------------
  tasks(ctx) {
    const { inv, facts } = ctx;
    // the pool's size in the cluster's chain (roles/sizing.ts); the role applies only with PHP
    const php = webSizing(ctx.host, facts, inv).php;
    if (!php) throw new Error('role app without PHP (roles.app.php: false)');
    const dbs = ctx.hosts('db');
    const primary = dbs.find((h) => h.primary) ?? dbs[0];
    const tasks: Task[] = [
      { name: `group ${FPM_USER}`, op: group({ name: FPM_USER, system: true }) },
      { name: `user ${FPM_USER} (the pool's)`, op: user({ name: FPM_USER, group: FPM_USER, system: true }) },
      // not started: the pool below replaces Debian's before PHP-FPM first runs
      { name: 'PHP-FPM, mysqli and opcache packages', op: packages(defaults.packages, { noStart: true }) },
      {
        name: 'PHP settings (opcache, sessions)',
        op: file({ path: defaults.ini, content: ctx.template('php.ini.njk', { opcacheMb: defaults.opcacheMb }) }),
        notify: ['reload php-fpm'],
      },
      {
        name: `pool hasetup: pm.max_children ${php.maxChildren}`,
        op: file({
          path: defaults.pool,
          content: ctx.template('pool.conf.njk', {
            php,
            user: FPM_USER,
            socket: FPM_SOCKET,
            statusPath: FPM_STATUS_PATH,
            pingPath: FPM_PING_PATH,
            slowlog: defaults.slowlog,
            slowlogAfter: defaults.slowlogAfter,
            terminateAfter: defaults.terminateAfter,
            errorLog: defaults.errorLog,
            dbConfig: DB_CONFIG,
          }),
          validate: VALIDATE_POOL,
          validateName: `${FPM_BIN} -t`,
        }),
        notify: ['reload php-fpm'],
      },
      { name: "no Debian's www pool", op: absent({ paths: [defaults.debianPool] }), notify: ['reload php-fpm'] },
      { name: '/etc/hasetup', op: directory({ path: '/etc/hasetup' }) },
      {
        name: `database credentials (${DB_CONFIG})`,
        op: file({
          path: DB_CONFIG,
          content: ctx.template('database.ini.njk', {
            db: primary,
            port: mysqlDefaults.port,
            mysql: inv.roles.mysql,
            password: inv.secrets.mysqlAppPassword,
            user: FPM_USER,
          }),
          group: FPM_USER,
          mode: '0640',
          sensitive: true,
        }),
      },
      { name: 'web root', op: directory({ path: WEB_ROOT }) },
      { name: 'releases', op: directory({ path: RELEASES_DIR }) },
      { name: `${FPM_UNIT} service`, op: service({ name: FPM_UNIT, enabled: true, started: true }) },
    ];
    return tasks;
  },

  // ---- handlers ------------------------------------------------------------------------------
  handlers(): Handler[] {
    // a reload starts new children on the new settings (and empties opcache); the listening socket stays
    return [{ name: 'reload php-fpm', script: `${FPM_BIN} -t 2>&1 && systemctl reload-or-restart ${FPM_UNIT}` }];
  },
};

export default role;
