// Role proxy: haproxy.cfg on the load balancers, in the modern syntax both runtimes read.
//   1. a frontend on the service port (every address: the VIP when this LB holds it), a backend
//      with every web node checked on Apache's health URL, the inventory's balance, retries and
//      redispatch, X-Forwarded-For, timeouts
//   2. per-server maxconn from each web node's Apache MaxRequestWorkers (its facts give its memory):
//      a traffic spike waits in the LB's queue instead of filling Apache
//   3. health checks that take a dead node out of rotation within 2 seconds (inventory defaults:
//      inter 500 ms, timeout 300 ms, fastinter 250 ms, fall 2, rise 2)
//   4. the stats page with the secrets file's password, only from the admin networks; the runtime
//      API on a UNIX socket; logs to the journal
//   5. HTTPS when roles.proxy.tls says so: the certificate (the user's, or the one generated beside
//      the secrets file) on the LBs, owned by haproxy and mode 0600, never shown in a diff; port 443
//      beside the service port, X-Forwarded-Proto for Apache, and plain HTTP redirected when asked
//      (the health URL excepted: the VRRP tracker asks it over HTTP). A new certificate is a reload.
//   6. checked by the runtime itself (hasetup-proxy -c, haproxy -c) before it replaces the running
//      file, then reloaded on one LB at a time: the backup first, the master once its peer serves.
//      Both runtimes reload without closing their listening sockets.
//   The proxy starts only once the web nodes of the run have their Apache (role apache), so that a
//   new node is not sent traffic before it can answer.
import { absent, directory, file, service, type Handler, type Host, type Inventory, type Role, type Task } from '../../cli/engine/api.ts';
import { lbSizing, webSizing } from '../sizing.ts';
import { ERROR_503, ERROR_DIR, errorPage503 } from './errorpage.ts';
import { drainRecord, runtimeOf, isLb, lbTurn, MONITOR_URI, PROXY_CONFIG, STATS_SOCKET, TLS_DIR, TLS_PEM, waitServing } from '../lb.ts';

const webs = (inv: Inventory): Host[] => inv.hosts.filter((h) => h.group === 'web');

const role: Role = {
  name: 'proxy',
  description:
    'haproxy.cfg for both runtimes: the web backend with per-server maxconn from Apache, fast health checks, admin-only stats page, reload one LB at a time',
  appliesTo: isLb,
  installs: (_h, inv) => ({ services: [runtimeOf(inv).proxyUnit] }),
  factsFrom: (_h, inv) => webs(inv),
  after: [{ group: 'web', role: 'apache' }],

  // ---- tasks ---------------------------------------------------------------------------------
  tasks(ctx) {
    const { inv } = ctx;
    const lbRuntime = runtimeOf(inv);
    const proxy = inv.roles.proxy;
    const servers = webs(inv).map((w) => {
      // `hasetup drain` recorded on this LB: drained (weight 0) or in maintenance (disabled) it stays
      const drained = drainRecord(ctx.facts.records, w.name);
      const { maxconn, maxconnWhy: why } = webSizing(w, ctx.factsOf(w), inv);
      const state = drained === 'drain' ? ' weight 0' : drained === 'maint' ? ' disabled' : '';
      const note = drained ? `; ${drained === 'drain' ? 'drained' : 'in maintenance'} by hasetup drain` : '';
      return { name: w.name, address: w.address, maxconn, state, why: why + note };
    });
    const config = ctx.template('haproxy.cfg.njk', {
      proxy,
      frontend: lbSizing(ctx.host, ctx.facts, inv),
      servers,
      admin: inv.roles.firewall.adminCidrs,
      statsHere: proxy.stats.port === proxy.port,
      statsPath: proxy.stats.uri.split('?')[0],
      statsPassword: inv.secrets.statsPassword,
      socket: STATS_SOCKET,
      tls: proxy.tls,
      tlsPem: TLS_PEM,
      errorfile: ERROR_503,
      monitorUri: MONITOR_URI,
    });
    // the certificate is in place before the configuration that names it is checked
    const certificate: Task[] = proxy.tls
      ? [
          { name: TLS_DIR, op: directory({ path: TLS_DIR, group: 'haproxy', mode: '0750' }) },
          {
            name: 'certificate and key (HTTPS)',
            op: file({ path: TLS_PEM, content: proxy.tls.pem, owner: 'haproxy', group: 'haproxy', mode: '0600', sensitive: true }),
            notify: ['reload the proxy'],
          },
        ]
      : [];
    return [
      { name: '/etc/haproxy', op: directory({ path: '/etc/haproxy' }) },
      ...certificate,
      // the 503 page (errorfile) is in place before the configuration that names it is checked
      { name: ERROR_DIR, op: directory({ path: ERROR_DIR }) },
      { name: '503 page (errorfile)', op: file({ path: ERROR_503, content: errorPage503(), mode: '0644' }), notify: ['reload the proxy'] },
      {
        name: 'haproxy.cfg',
        // the proxy (user haproxy) reads it; it holds the stats password
        op: file({
          path: PROXY_CONFIG,
          content: config,
          group: 'haproxy',
          mode: '0640',
          validate: lbRuntime.proxyCheck,
          validateName: `${lbRuntime.name === 'haproxy' ? 'haproxy' : 'hasetup-proxy'} -c`,
        }),
        notify: ['reload the proxy'],
      },
      // what dpkg keeps when HAProxy is installed over a file of ours
      { name: 'no packaged haproxy.cfg beside it', op: absent({ paths: [`${PROXY_CONFIG}.dpkg-dist`, `${PROXY_CONFIG}.dpkg-old`] }) },
      // HTTPS turned off: the key leaves the LBs (once the configuration no longer names it)
      ...(proxy.tls ? [] : [{ name: 'no certificate (HTTPS off)', op: absent({ paths: [TLS_DIR] }) }]),
      { name: `${lbRuntime.proxyUnit} service`, op: service({ name: lbRuntime.proxyUnit, enabled: true, started: true }) },
    ];
  },

  // ---- handlers ------------------------------------------------------------------------------
  handlers(ctx): Handler[] {
    const { inv } = ctx;
    const unit = runtimeOf(inv).proxyUnit;
    return [
      {
        name: 'reload the proxy',
        serial: lbTurn(inv),
        script: `if systemctl is-active -q ${unit}; then systemctl reload ${unit}; ${waitServing(inv)}; fi`,
      },
    ];
  },
};

export default role;
