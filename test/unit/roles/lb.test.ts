// The load-balancing roles (runtime, proxy, vrrp): what they render for each LB and each engine, and
// their own operations (the Node.js version, earlier releases, the engine switch).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import proxy from '../../../roles/proxy/index.ts';
import vrrp, { trackWeight } from '../../../roles/vrrp/index.ts';
import runtime, { bundle } from '../../../roles/runtime/index.ts';
import { runtimeSwitch, majorOf, nodeVersion, onlyRelease } from '../../../roles/runtime/ops.ts';
import { roleContext } from '../../../cli/engine/role.ts';
import { PlanError, type PlanContext } from '../../../cli/engine/ops.ts';
import type { Facts } from '../../../cli/engine/facts.ts';
import type { Inventory } from '../../../inventory/types.ts';
import { seedCluster } from '../../helpers/fixture-role.ts';

const facts = (records: Record<string, string> = {}) =>
  ({ hostname: 'lb01', arch: 'x86_64', memoryMb: 1024, container: true, records }) as unknown as Facts;
const ctx: PlanContext = { facts: facts(), earlierChange: false };

const cluster = (over: Partial<Inventory> = {}): Inventory => seedCluster(over);

/** The content a file task of a role would write, for a host. */
function rendered(role: typeof proxy, inv: Inventory, host: string, task: string, records: Record<string, string> = {}): string {
  const h = inv.hosts.find((x) => x.name === host)!;
  const peers = new Map(inv.hosts.map((x) => [x.name, facts()]));
  const t = role.tasks(roleContext(role, h, inv, facts(records), peers)).find((x) => x.name === task);
  assert.ok(t, `task ${task}`);
  const p = t.op.plan('absent', ctx);
  assert.ok(p.changed && p.stdin !== undefined);
  return p.stdin.toString();
}

test('proxy: one server line per web node, maxconn from its PHP-FPM pool, drained and maintenance nodes as recorded', () => {
  const cfg = rendered(proxy, cluster(), 'lb01', 'haproxy.cfg', { 'drain.web02': 'maint' });
  const servers = cfg.split('\n').filter((l) => /^\s+server /.test(l));
  assert.deepEqual(servers, [
    "    server web01 10.0.0.21:80 maxconn 8 cookie web01  # the pool's 9 children - 1 for its status page",
    "    server web02 10.0.0.22:80 maxconn 8 disabled cookie web02  # the pool's 9 children - 1 for its status page; in maintenance by hasetup drain",
  ]);
  assert.match(
    cfg,
    /^\s+default-server check inter 500 fastinter 250 downinter 1000 rise 2 fall 2 observe layer4 error-limit 2 on-error mark-down$/m,
  );
  assert.match(cfg, /^\s+retries 3$/m);
  assert.match(cfg, /^\s+option redispatch$/m);
  assert.match(cfg, /^\s+stats socket \/run\/haproxy\/admin\.sock mode 660 level admin$/m);
  // the stats page: its password from the secrets, reached only from the admin networks
  assert.match(cfg, /^\s+stats auth admin:statspw-abcdef123$/m);
  assert.match(cfg, /^\s+acl hasetup_admin src 127\.0\.0\.1\/32$/m);
  assert.match(cfg, /^\s+use_backend stats if hasetup_stats hasetup_admin$/m);
  assert.match(
    rendered(proxy, cluster(), 'lb01', 'haproxy.cfg', { 'drain.web01': 'drain' }),
    /server web01 10\.0\.0\.21:80 maxconn 8 weight 0 cookie web01 {2}# .*drained by hasetup drain$/m,
  );
  // the frontend's maxconn from the LB's memory: (1024 - 128) MB / 64 KB per session
  assert.match(cfg, /^ {4}maxconn 4096\n/m);
  assert.match(cfg, /^frontend www\n(?: {4}#.*\n)+ {4}maxconn 4096\n {4}bind :80$/m);
  // the VRRP tracker's frontend: answered by the proxy itself, room for it beyond a full www (global maxconn)
  assert.match(cfg, /^global\n(?:.*\n)*? {4}maxconn 4116\n/m);
  assert.match(
    cfg,
    /^frontend monitor\n {4}bind 127\.0\.0\.1:8405\n {4}maxconn 10\n {4}no log\n {4}monitor-uri \/hasetup-serving\n {4}monitor fail if \{ nbsrv\(web\) lt 1 \}\n/m,
  );
});

test('proxy: the same file for both engines, checked by the engine that runs it', () => {
  const b = cluster();
  const h = cluster({ runtime: 'haproxy' });
  assert.equal(rendered(proxy, b, 'lb01', 'haproxy.cfg'), rendered(proxy, h, 'lb01', 'haproxy.cfg'));
  assert.match(rendered(proxy, b, 'lb01', 'haproxy.cfg'), /^ {4}retry-on conn-failure empty-response response-timeout$/m);
  const check = (inv: Inventory) => {
    const peers = new Map(inv.hosts.map((x) => [x.name, facts()]));
    const t = proxy.tasks(roleContext(proxy, inv.hosts[0], inv, facts(), peers)).find((x) => x.name === 'haproxy.cfg')!;
    const p = t.op.plan('absent', ctx);
    return p.changed ? p.script : '';
  };
  assert.match(check(b), /hasetup-proxy\.cjs -c -q -f "\$tmp"/);
  assert.match(check(h), /haproxy -c -q -f "\$tmp"/);
  assert.deepEqual(proxy.installs?.(b.hosts[0], b), { services: ['hasetup-proxy'] });
  assert.deepEqual(proxy.installs?.(h.hosts[0], h), { services: ['haproxy'] });
});

type Tls = NonNullable<Inventory['roles']['proxy']['tls']>;
const TLS: Tls = {
  port: 443,
  redirect: true,
  certificate: 'CERT\n',
  pem: 'CERT\nKEY\n',
  source: { kind: 'generated', file: '/x.tls.pem' },
  fingerprint: 'AB',
  notAfter: '2029-01-01T00:00:00.000Z',
  names: ['lab'],
};
const withTls = (tls: Partial<Tls> = {}, over: Partial<Inventory> = {}): Inventory => {
  const inv = cluster(over);
  inv.roles.proxy.tls = { ...TLS, ...tls };
  return inv;
};

test('proxy: HTTPS beside the service port, X-Forwarded-Proto set, HTTP redirected but for the health URL, the same for both engines', () => {
  const cfg = rendered(proxy, withTls(), 'lb01', 'haproxy.cfg');
  assert.equal(cfg, rendered(proxy, withTls({}, { runtime: 'haproxy' }), 'lb01', 'haproxy.cfg'));
  const www = cfg.slice(cfg.indexOf('frontend www'), cfg.indexOf('backend web'));
  assert.match(www, /^ {4}bind :80\n {4}bind :443 ssl crt \/etc\/haproxy\/tls\/site\.pem alpn http\/1\.1$/m);
  assert.match(www, /^ {4}http-request redirect scheme https code 301 unless \{ ssl_fc \} \|\| \{ path \/health \}$/m);
  assert.match(www, /^ {4}http-request set-header X-Forwarded-Proto https if \{ ssl_fc \}$/m);
  assert.match(www, /^ {4}http-request set-header X-Forwarded-Proto http unless \{ ssl_fc \}$/m);
  assert.ok(www.indexOf('http-request') < www.indexOf('use_backend'), 'the rules come before the backend choice');
  assert.match(cfg, /^ {4}ssl-default-bind-options ssl-min-ver TLSv1\.2$/m);
  assert.doesNotMatch(rendered(proxy, withTls({ redirect: false }), 'lb01', 'haproxy.cfg'), /redirect/);
  const plain = rendered(proxy, cluster(), 'lb01', 'haproxy.cfg');
  assert.doesNotMatch(plain, /ssl|X-Forwarded-Proto|:443/);
});

test('proxy: the certificate goes to the LBs before the configuration that names it, hidden from diffs; off, it leaves', () => {
  const names = (inv: Inventory) =>
    proxy.tasks(roleContext(proxy, inv.hosts[0], inv, facts(), new Map(inv.hosts.map((x) => [x.name, facts()])))).map((t) => t.name);
  const on = names(withTls());
  assert.ok(on.indexOf('certificate and key (HTTPS)') < on.indexOf('haproxy.cfg'));
  assert.ok(!on.includes('no certificate (HTTPS off)'));
  const off = names(cluster());
  assert.ok(off.indexOf('no certificate (HTTPS off)') > off.indexOf('haproxy.cfg'), 'removed once the configuration no longer names it');
  assert.ok(!off.includes('certificate and key (HTTPS)'));

  const inv = withTls();
  const t = proxy
    .tasks(roleContext(proxy, inv.hosts[0], inv, facts(), new Map(inv.hosts.map((x) => [x.name, facts()]))))
    .find((x) => x.name === 'certificate and key (HTTPS)')!;
  assert.deepEqual(t.notify, ['reload the proxy']);
  const p = t.op.plan('absent', ctx);
  assert.ok(p.changed);
  assert.equal(p.stdin?.toString(), 'CERT\nKEY\n');
  assert.doesNotMatch(p.diff ?? '', /KEY/, 'the key is never in a diff');
  assert.match(p.script ?? '', /chown haproxy:haproxy/);
  assert.match(p.script ?? '', /chmod 600/);
});

test('vrrp: version 3 every 0.2 s, the preferred master alone waits to take the VIP back, a tracker that drops below the peer', () => {
  const inv = cluster();
  inv.vrrp = { routerId: 51, advertInt: 0.2, version: 3, unicast: true };
  const lb01 = rendered(vrrp, inv, 'lb01', 'keepalived.conf');
  const lb02 = rendered(vrrp, inv, 'lb02', 'keepalived.conf');
  assert.match(lb01, /^\s+vrrp_version 3$/m);
  assert.match(lb01, /^\s+advert_int 0\.2$/m);
  assert.match(lb01, /^\s+priority 150$/m);
  assert.match(lb01, /^\s+preempt_delay 5$/m);
  assert.doesNotMatch(lb02, /preempt_delay/);
  assert.match(lb01, /unicast_src_ip 10\.0\.0\.11\n\s+unicast_peer \{\n\s+10\.0\.0\.12\n/);
  assert.doesNotMatch(lb01, /auth_pass/, 'no authentication with version 3');
  // the tracker asks the proxy's monitor frontend, which the proxy answers itself (never queued behind a flood)
  assert.match(lb01, /script "\/usr\/bin\/curl -fsS -o \/dev\/null --max-time 2 http:\/\/127\.0\.0\.1:8405\/hasetup-serving"/);
  assert.match(lb01, /^\s+weight -60$/m);
  assert.equal(trackWeight([150, 100]), -60);
  assert.ok(150 + trackWeight([150, 100]) < 100);
  inv.vrrp = { routerId: 51, advertInt: 1, version: 2, unicast: false };
  const v2 = rendered(vrrp, inv, 'lb02', 'keepalived.conf');
  assert.match(v2, /auth_type PASS\n\s+auth_pass vrrp1234/);
  assert.doesNotMatch(v2, /unicast/);
});

test('runtime: the bundle in a folder named after its version and checksum, binaries without diffs', () => {
  const b = bundle('x86_64');
  assert.match(b.version, /^\d+\.\d+\.\d+-[0-9a-f]{12}$/);
  assert.deepEqual(
    b.files.map((f) => f.name),
    ['hasetup-proxy.cjs', 'hasetup-vrrpd.cjs', 'proxy-linux-x64.node', 'vrrpd-linux-x64.node'],
  );
  assert.throws(() => bundle('riscv64'), /built for x86_64 and aarch64, not riscv64: use `runtime: haproxy`/);
  const inv = cluster();
  const tasks = runtime.tasks(roleContext(runtime, inv.hosts[0], inv, facts()));
  const addon = tasks.find((t) => t.name === 'proxy-linux-x64.node')!;
  const p = addon.op.plan('absent', ctx);
  assert.ok(p.changed);
  assert.match(p.diff ?? '', /^binary file \/opt\/hasetup\/runtime\/.+\/proxy-linux-x64\.node created, \d+ bytes$/m);
  // the probe reads only a checksum: no content comes back for a binary
  assert.doesNotMatch(addon.op.probe(), /base64/);
  const link = tasks.find((t) => t.name === 'current release')!;
  assert.deepEqual(link.notify, ['restart the runtime']);
});

test('runtime: Node.js 18 or later, refused before anything is installed when the distribution offers less', () => {
  const op = nodeVersion(18);
  assert.deepEqual(op.plan('installed v18.20.4', ctx), { changed: false, note: 'node v18.20.4' });
  assert.deepEqual(op.plan('candidate 18.20.4+dfsg-1~deb12u3', ctx), { changed: false, note: 'apt offers nodejs 18.20.4+dfsg-1~deb12u3' });
  assert.throws(
    () => op.plan('candidate 12.22.12~dfsg-1~deb11u4', ctx),
    (e: Error) => e instanceof PlanError && /offers Node\.js 12\.22\.12~dfsg-1~deb11u4 .* need 18 or later/.test(e.message),
  );
  assert.throws(() => op.plan('installed v16.20.0', ctx), /Node\.js v16\.20\.0 is installed; .* 18 or later/);
  assert.throws(() => op.plan('candidate (none)', ctx), /offers no Node\.js/);
  assert.equal(majorOf('1:20.1.0'), 20);
});

test('runtime: earlier releases go, the current one and its link stay', () => {
  const op = onlyRelease('/opt/hasetup/runtime', ['0.1.0-abc', 'current']);
  assert.deepEqual(op.plan('0.1.0-abc\ncurrent\n', ctx), { changed: false });
  const p = op.plan('0.1.0-old\n0.1.0-abc\ncurrent\ncurrent.hasetup-new\n', ctx);
  assert.ok(p.changed && p.script === 'cd /opt/hasetup/runtime && rm -rf -- 0.1.0-old current.hasetup-new');
});

test('runtime: an engine switch stops the other VRRP daemon first, starts this engine before it removes the other, and goes back on a failure', () => {
  const op = runtimeSwitch({
    to: 'x',
    stop: ['keepalived', 'haproxy'],
    start: [
      { unit: 'hasetup-proxy', config: '/etc/haproxy/haproxy.cfg' },
      { unit: 'hasetup-vrrpd', config: '/etc/keepalived/keepalived.conf' },
    ],
    purge: ['haproxy', 'keepalived'],
    paths: [],
    users: ['keepalived_script'],
    keep: ['/etc/haproxy/haproxy.cfg'],
    keepUsers: ['haproxy'],
  });
  assert.deepEqual(op.plan('', ctx), { changed: false });
  const p = op.plan('running keepalived\npackage haproxy\n', ctx);
  assert.ok(p.changed);
  const s = p.script;
  const at = (x: string) => s.indexOf(x);
  assert.ok(at('systemctl stop keepalived.service') < at('systemctl stop haproxy.service'), 'VRRP first');
  assert.ok(
    at('systemctl enable --now hasetup-proxy.service') < at('purge haproxy keepalived'),
    'the new engine starts before the old one goes',
  );
  assert.ok(at('did not start: the other engine is started again') < at('purge'), 'a failure goes back before anything is removed');
  assert.ok(
    at('ids_haproxy=') < at('purge') && at('useradd --system -u') > at('purge'),
    'the haproxy user survives the purge, with its ids',
  );
});

test('proxy: cookie persistence by default with PHP, none without or when asked; abortonclose and the 503 page for both engines', () => {
  const cfg = rendered(proxy, cluster(), 'lb01', 'haproxy.cfg');
  assert.match(cfg, /^backend web\n {4}balance roundrobin\n(?: {4}#.*\n)+ {4}cookie SERVERID insert indirect nocache httponly\n/m);
  assert.match(cfg, /^ {4}option abortonclose$/m);
  assert.match(cfg, /^ {4}errorfile 503 \/etc\/haproxy\/errors\/503\.http$/m);
  const withTlsRedirect = rendered(proxy, withTls(), 'lb01', 'haproxy.cfg');
  assert.match(withTlsRedirect, /^ {4}cookie SERVERID insert indirect nocache httponly secure$/m);
  {
    const inv = cluster();
    inv.roles.proxy = { ...inv.roles.proxy, persistence: 'none' };
    const none = rendered(proxy, inv, 'lb01', 'haproxy.cfg');
    assert.doesNotMatch(none, /cookie/);
    assert.match(none, /^ {4}errorfile 503 /m);
  }
  // the page: a whole response, Retry-After, its Content-Length right; written before the configuration
  const page = rendered(proxy, cluster(), 'lb01', '503 page (errorfile)');
  const [head, body] = page.split('\r\n\r\n');
  assert.match(head, /^HTTP\/1\.1 503 Service Unavailable\r\n/);
  assert.match(head, /\r\nRetry-After: 5\r\n/);
  assert.equal(Number(/Content-Length: (\d+)/.exec(head)![1]), Buffer.byteLength(body));
  const names = proxy
    .tasks(roleContext(proxy, cluster().hosts[0], cluster(), facts(), new Map(cluster().hosts.map((x) => [x.name, facts()]))))
    .map((t) => t.name);
  assert.ok(names.indexOf('503 page (errorfile)') < names.indexOf('haproxy.cfg'));
});
