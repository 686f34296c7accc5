// Role mysql: the database hosts, MariaDB from Debian as the maintained stand-in for MySQL 5.1.
//   1. the configuration file first, then the package: MariaDB's very first start already has
//      server_id and log_bin, so the primary's binary log holds everything from the beginning
//   2. no option left that 10.11 refuses (5.1-era names: see sql.ts LEGACY_OPTIONS)
//   3. the running server has the replication settings (restarted now if it predates the file), and
//      the max_connections the cluster's size asks for (set live: growing the cluster restarts nothing)
//   4. hardened: no anonymous users, no test database, root by unix socket only
//   5. primary: the application database; its user from each web node's address only; the
//      replication user from each replica's address only; the demo application's tables when the
//      web nodes run it (demo.ts: no site of the user's, PHP on)
//   6. replicas: replicate from the primary by GTID (no dump for a new cluster: the primary's binary
//      log starts at its first start), and a task that fails unless both replication threads run;
//      then the same accounts as the primary, which replication has usually brought already
// Every SQL step reads the state first and changes only what differs (sql.ts): a second apply
// reports ok everywhere. On a replica, the role's own SQL is kept out of its binary log
// (sql_log_bin = 0), so that the replica has no transaction of its own when it is promoted.
import { directory, file, packages, service, type Handler, type Role, type Task } from '../../cli/engine/api.ts';
import { mysqlSizing, webSizing } from '../sizing.ts';
import {
  RESTART_PREFLIGHT,
  appAccounts,
  database,
  legacyOptions,
  liveSetting,
  noAnonymousUsers,
  noTestDatabase,
  replicaOf,
  replicationAccounts,
  replicationRunning,
  rootSocketOnly,
  runningSettings,
} from './sql.ts';
import { demoTables } from './demo.ts';
import { runsDemo } from '../web.ts';

// ---- defaults -------------------------------------------------------------------------------
export const defaults = {
  packages: ['mariadb-server'],
  configFile: '/etc/mysql/mariadb.conf.d/60-hasetup.cnf',
  /** max_connections apart: it changes with the cluster's size and needs no restart. */
  connectionsFile: '/etc/mysql/mariadb.conf.d/61-hasetup-connections.cnf',
  port: 3306,
  replicationUser: 'repl',
  /** Seconds between a replica's reconnection attempts (the 5.1 default, 60, is long after a primary restart). */
  connectRetry: 5,
  /** A replica waits this long for the primary (set up at the same time) to accept the replication account. */
  waitPrimarySec: 300,
  waitThreadsSec: 60,
};

/**
 * Checks a candidate option file: mariadbd parses it (with --help, so nothing starts) and rejects
 * unknown options and bad values. Before MariaDB is installed there is nothing to check it with.
 */
export const VALIDATE = 'if [ -x /usr/sbin/mariadbd ]; then /usr/sbin/mariadbd --defaults-file=%s --help --verbose >/dev/null; fi';

const RESTART =
  // Restart unless the server started after the file last changed: on a fresh host the package's
  // first start already read it, and runningSettings may have restarted it in this run. Never with
  // option files the server would not start with (RESTART_PREFLIGHT).
  `f=${defaults.configFile}\n` +
  't=$(systemctl show -p ActiveEnterTimestamp --value mariadb)\n' +
  'if [ -n "$t" ] && systemctl is-active -q mariadb && [ "$(date -d "$t" +%s)" -gt "$(stat -c %Y "$f")" ]; then exit 0; fi\n' +
  `${RESTART_PREFLIGHT}\n` +
  'systemctl restart mariadb || { systemctl status --no-pager -n 20 mariadb; exit 1; }';

const role: Role = {
  name: 'mysql',
  description: 'MariaDB: replication settings, hardening, app database and users, replicas by GTID',
  appliesTo: (host) => host.group === 'db',
  installs: () => ({ packages: [...defaults.packages, 'mariadb-client'], services: ['mariadb'] }),
  // max_connections is sized from what the web nodes may open at once (roles/sizing.ts)
  factsFrom: (_h, inv) => inv.hosts.filter((h) => h.group === 'web'),

  // ---- tasks ---------------------------------------------------------------------------------
  tasks(ctx) {
    const { host, inv } = ctx;
    const mysql = inv.roles.mysql;
    const dbs = ctx.hosts('db');
    const primary = dbs.find((h) => h.primary) ?? dbs[0];
    const replicas = dbs.filter((h) => h !== primary);
    const webs = ctx.hosts('web');
    const isReplica = host.name !== primary.name;
    const noBinlog = isReplica;
    // a fixed max_connections below what the web tier may open is refused before anything changes
    const sizing = mysqlSizing(
      inv,
      webs.map((w) => webSizing(w, ctx.factsOf(w), inv)),
    );
    if (sizing.problem) throw new Error(sizing.problem);

    const accounts = (): Task[] => [
      { name: `database ${mysql.appDatabase}`, op: database({ name: mysql.appDatabase, noBinlog }) },
      {
        name: `user ${mysql.appUser} from the web nodes`,
        op: appAccounts({
          user: mysql.appUser,
          database: mysql.appDatabase,
          hosts: webs.map((w) => w.address),
          password: inv.secrets.mysqlAppPassword,
          noBinlog,
        }),
      },
      {
        name: `user ${defaults.replicationUser} from the replicas`,
        op: replicationAccounts({
          user: defaults.replicationUser,
          hosts: replicas.map((r) => r.address),
          password: inv.secrets.mysqlReplicationPassword,
          noBinlog,
        }),
      },
    ];

    const tasks: Task[] = [
      { name: 'option file folder', op: directory({ path: '/etc/mysql/mariadb.conf.d' }) },
      {
        name: 'replication settings (60-hasetup.cnf)',
        op: file({ path: defaults.configFile, content: ctx.template('60-hasetup.cnf.njk', { mysql }), validate: VALIDATE }),
        notify: ['restart mariadb'],
      },
      {
        name: 'max_connections (61-hasetup-connections.cnf)',
        op: file({
          path: defaults.connectionsFile,
          content: ctx.template('61-hasetup-connections.cnf.njk', { sizing }),
          validate: VALIDATE,
        }),
      },
      { name: 'mariadb-server package', op: packages(defaults.packages) },
      { name: 'no 5.1-era options', op: legacyOptions() },
      { name: 'mariadb service', op: service({ name: 'mariadb', enabled: true, started: true }) },
      {
        name: 'running with the replication settings',
        op: runningSettings({
          server_id: String(host.serverId ?? 1),
          log_bin: 'ON',
          binlog_format: mysql.binlogFormat,
          log_slave_updates: 'ON',
        }),
      },
      { name: 'max_connections on the running server', op: liveSetting('max_connections', sizing.maxConnections) },
      { name: 'no anonymous users', op: noAnonymousUsers({ noBinlog }) },
      { name: 'no test database', op: noTestDatabase({ noBinlog }) },
      { name: 'root by unix socket only', op: rootSocketOnly({ noBinlog }) },
    ];
    if (!isReplica) {
      tasks.push(...accounts());
      // a replica gets them by replication
      if (runsDemo(inv)) tasks.push({ name: 'demo application tables', op: demoTables({ database: mysql.appDatabase }) });
    } else {
      tasks.push(
        {
          name: `replicate from ${primary.name}`,
          op: replicaOf({
            primary: primary.address,
            port: defaults.port,
            user: defaults.replicationUser,
            password: inv.secrets.mysqlReplicationPassword,
            connectRetry: defaults.connectRetry,
            waitPrimarySec: defaults.waitPrimarySec,
            waitThreadsSec: defaults.waitThreadsSec,
          }),
        },
        { name: 'replication threads running', op: replicationRunning({ waitSec: defaults.waitThreadsSec }) },
        ...accounts(),
      );
    }
    return tasks;
  },

  // ---- handlers ------------------------------------------------------------------------------
  handlers(): Handler[] {
    return [{ name: 'restart mariadb', script: RESTART }];
  },
};

export default role;
