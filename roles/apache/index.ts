// Role apache: the web nodes.
//   1. apache2 from Debian, with the event MPM sized for the node's concurrency (roles/sizing.ts)
//   2. mod_remoteip: the client address behind the load balancers, trusted from the LBs only, and
//      an access log that records it (%a)
//   3. ServerTokens Prod, ServerSignature Off; server-status from this host's loopback only
//   4. the site: with PHP (role app) or a site of the user's, the release the deploy switched
//      `current` to, .php files sent to the site's PHP-FPM pool over proxy_fcgi and the pool's
//      status and ping from this host's loopback only; without, a page naming the node that served
//      it. The LBs' health URL is always a static file outside the release. Debian's default site
//      (and the PHP package's own conf) disabled
//   5. every configuration file checked with `apache2ctl -t` (in a copy of the configuration, with
//      the new file in place) before it replaces the old one, and again before any reload or restart
import { directory, file, packages, service, type Handler, type Role, type Task } from '../../cli/engine/api.ts';
import { apacheEnabled } from './a2.ts';
import { webSizing } from '../sizing.ts';
import { CURRENT, FPM_PING_PATH, FPM_SOCKET, FPM_STATUS_PATH, FPM_UNIT, runsPhp, servesRelease, WEB_ROOT } from '../web.ts';

// ---- defaults -------------------------------------------------------------------------------
export const defaults = {
  /** mariadb-client: the application's side of the database (the failover test's writes and reads go from here). */
  packages: ['apache2', 'mariadb-client'],
  docroot: WEB_ROOT,
  site: 'hasetup',
  conf: 'hasetup',
  /** mod_remoteip resolves the client, mod_headers names the node, mod_status serves server-status. */
  modules: ['mpm_event', 'remoteip', 'headers', 'status', 'alias', 'setenvif'],
  /** ... and with PHP: proxy_fcgi to the PHP-FPM pool. */
  phpModules: ['proxy', 'proxy_fcgi'],
  /** The other MPMs (only one may be loaded). */
  otherMpms: ['mpm_prefork', 'mpm_worker'],
  /** Debian's confs this role replaces (security.conf: ServerTokens OS) or does not want (CGI). */
  unwantedConfs: ['security', 'serve-cgi-bin', FPM_UNIT],
  unwantedSites: ['000-default'],
};

/**
 * Checks a candidate configuration file in the whole configuration, as it will be once the file is in
 * place: a copy of /etc/apache2 with the candidate put there, tested by `apache2ctl -t` (which Debian's
 * apache2ctl runs on another folder through APACHE_CONFDIR). A typo fails before the file replaces the
 * old one; a live file broken by hand does not stop the role from putting the right one back.
 */
export function validateInPlace(path: string): string {
  if (!path.startsWith('/etc/apache2/')) throw new Error(`${path} is not under /etc/apache2`);
  const rel = path.slice('/etc/apache2/'.length);
  return `d=$(mktemp -d) && { cp -a /etc/apache2/. "$d"/ && cp %s "$d/${rel}" && APACHE_CONFDIR="$d" apache2ctl -t; rc=$?; rm -rf "$d"; [ $rc -eq 0 ]; }`;
}

/** A URL path usable in Alias and in a regular expression without quoting trouble. */
function checkHealthPath(p: string): string {
  if (!/^\/[A-Za-z0-9._~/-]*$/.test(p) || p === '/') {
    throw new Error(
      `roles.proxy.health_check.path "${p}": the apache role serves it as a static file and needs a plain path such as /health`,
    );
  }
  return p;
}

const role: Role = {
  name: 'apache',
  description: 'apache2 (event MPM sized from memory), mod_remoteip from the LBs, node page, health URL',
  appliesTo: (host) => host.group === 'web',
  installs: () => ({ packages: defaults.packages, services: ['apache2'] }),

  // ---- tasks ---------------------------------------------------------------------------------
  tasks(ctx) {
    const { inv, facts } = ctx;
    const mpm = webSizing(ctx.host, facts, inv).apache;
    const healthPath = checkHealthPath(inv.roles.proxy.healthCheck.path);
    const d = defaults.docroot;
    const php = runsPhp(inv);
    const php_ = php ? { socket: FPM_SOCKET, statusRegex: `^(${FPM_STATUS_PATH}|${FPM_PING_PATH})$`.replace(/[.]/g, '\\.') } : null;
    const conf = (path: string, content: string, notify: string) => ({
      op: file({ path, content, validate: validateInPlace(path) }),
      notify: [notify],
    });
    const tasks: Task[] = [
      { name: 'apache2 package', op: packages(defaults.packages) },
      // The MPM's numbers: ServerLimit only changes with a full restart.
      {
        name: `event MPM: MaxRequestWorkers ${mpm.maxRequestWorkers}`,
        ...conf('/etc/apache2/mods-available/mpm_event.conf', ctx.template('mpm_event.conf.njk', { mpm }), 'restart apache2'),
      },
      {
        name: 'modules (event MPM, remoteip, headers, status)',
        op: apacheEnabled({ kind: 'mod', enable: [...defaults.modules, ...(php ? defaults.phpModules : [])], disable: defaults.otherMpms }),
        notify: ['restart apache2'],
      },
      {
        name: 'server settings (tokens, remoteip, log format)',
        ...conf(
          `/etc/apache2/conf-available/${defaults.conf}.conf`,
          ctx.template('hasetup.conf.njk', { lbs: ctx.hosts('lb') }),
          'reload apache2',
        ),
      },
      { name: 'document root', op: directory({ path: d }) },
      { name: 'node page', op: file({ path: `${d}/index.html`, content: ctx.template('index.html.njk') }) },
      { name: `health URL ${healthPath}`, op: file({ path: `${d}/health.txt`, content: 'ok\n' }) },
      {
        name: 'site',
        ...conf(
          `/etc/apache2/sites-available/${defaults.site}.conf`,
          ctx.template('site.conf.njk', {
            root: d,
            docroot: servesRelease(inv) ? CURRENT : d,
            php: php_,
            healthPath,
            healthRegex: healthPath.replace(/[.]/g, '\\.'),
          }),
          'reload apache2',
        ),
      },
      {
        name: 'confs',
        op: apacheEnabled({ kind: 'conf', enable: [defaults.conf], disable: defaults.unwantedConfs }),
        notify: ['reload apache2'],
      },
      {
        name: 'sites',
        op: apacheEnabled({ kind: 'site', enable: [defaults.site], disable: defaults.unwantedSites }),
        notify: ['reload apache2'],
      },
      { name: 'apache2 service', op: service({ name: 'apache2', enabled: true, started: true }) },
    ];
    return tasks;
  },

  // ---- handlers ------------------------------------------------------------------------------
  handlers(): Handler[] {
    return [
      // a module or MPM change needs a full restart; both only after the whole configuration passes
      { name: 'restart apache2', script: 'apache2ctl configtest && systemctl restart apache2' },
      { name: 'reload apache2', script: 'apache2ctl configtest && systemctl reload-or-restart apache2' },
    ];
  },
};

export default role;
