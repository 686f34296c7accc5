// haproxy.cfg parsing: the seed verbatim, the modern spelling, defaults inheritance, and alerts that
// name the file, the line and the keyword.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  ConfigError,
  parseConfig,
  parseTime,
  tokenize,
  formatAlert,
  effectiveTimeouts,
  workerCpus,
} from '../../../runtime/proxy/config.ts';

const seed = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..', 'shared', 'seed', 'haproxy.cfg');
const parse = (text: string) => parseConfig([{ file: 'test.cfg', text }]);
function alerts(text: string): string[] {
  try {
    parse(text);
  } catch (e) {
    assert.ok(e instanceof ConfigError);
    return e.alerts.map((a) => formatAlert(a));
  }
  assert.fail('expected a config error');
}

test('the seed config parses verbatim into the expected model', () => {
  const cfg = parseConfig([{ file: seed, text: readFileSync(seed, 'utf8') }]);
  assert.deepEqual(cfg.global.logs, [{ kind: 'udp', host: '127.0.0.1', port: 514, facility: 16, maxLevel: 7, format: 'rfc3164' }]);
  assert.equal(cfg.global.maxconn, 4096);
  assert.equal(cfg.global.user, 'haproxy');
  assert.equal(cfg.global.group, 'haproxy');
  assert.equal(cfg.global.daemon, true);
  assert.equal(cfg.proxies.length, 1);
  const p = cfg.proxies[0];
  assert.equal(p.name, 'webfarm');
  assert.equal(p.kind, 'listen');
  assert.deepEqual(
    p.binds.map((b) => [b.host, b.port]),
    [['', 80]],
  );
  assert.equal(p.mode, 'http');
  assert.equal(p.httplog, true);
  assert.equal(p.dontlognull, true);
  assert.equal(p.retries, 3);
  assert.equal(p.redispatch, -1);
  assert.equal(p.maxconn, 2000);
  assert.deepEqual(p.timeouts, { connect: 5000, client: 50000, server: 50000 });
  assert.equal(p.logs.length, 1);
  assert.equal(p.stats.enabled, true);
  assert.equal(p.stats.uri, '/haproxy?stats');
  assert.equal(p.balance, 'roundrobin');
  assert.equal(p.connMode, 'close');
  assert.equal(p.forwardfor?.header, 'X-Forwarded-For');
  assert.deepEqual(
    p.servers.map((s) => [s.name, s.host, s.port, s.check, s.inter, s.rise, s.fall, s.weight]),
    [
      ['web01', '192.168.1.10', 80, true, 2000, 2, 3, 1],
      ['web02', '192.168.1.11', 80, true, 2000, 2, 3, 1],
    ],
  );
  assert.equal(cfg.warnings.length, 3);
});

test('the modern spelling: frontend/backend, bind, timeout, ACLs, server options', () => {
  const cfg = parse(`
global
    log stdout format raw local0 info
    nbthread 4
    stats socket /run/x.sock mode 600 level admin
defaults
    mode http
    timeout connect 5s
    timeout client 1m
    timeout server 50s
    timeout http-request 10s
    option http-server-close
frontend www
    bind 127.0.0.1:8080,127.0.0.2:8081
    acl api path_beg /api/ /v2/
    acl h hdr(host) -i Example.COM
    use_backend apis if api !h
    use_backend apis if { path_end .json } || h
    http-request use-service prometheus-exporter if { path /metrics }
    default_backend webs
backend webs
    balance leastconn
    option httpchk GET /health HTTP/1.1\\r\\nHost:\\ www
    http-check expect status 200-299,304
    default-server inter 1s fastinter 200 downinter 5s rise 3 fall 2
    server a 10.0.0.1:80 check weight 10 maxconn 50 slowstart 30s observe layer7 error-limit 5 on-error mark-down
    server b 10.0.0.2:80 check backup disabled
backend apis
    balance uri
    server c 10.0.0.3:8000
`);
  assert.equal(cfg.global.nbthread, 4);
  assert.deepEqual(
    cfg.global.statsSockets.map((s) => [s.path, s.mode, s.level]),
    [['/run/x.sock', 0o600, 'admin']],
  );
  assert.equal(cfg.global.logs[0].kind, 'stdout');
  assert.equal(cfg.global.logs[0].format, 'raw');
  assert.equal(cfg.global.logs[0].maxLevel, 6);
  const www = cfg.proxies.find((p) => p.name === 'www')!;
  assert.equal(www.binds.length, 2);
  assert.equal(www.connMode, 'server-close');
  assert.equal(www.timeouts.client, 60000);
  assert.equal(www.useBackends.length, 2);
  assert.equal(www.useBackends[0].cond.groups[0].length, 2);
  assert.equal(www.useBackends[0].cond.groups[0][1].negate, true);
  assert.deepEqual(www.useBackends[0].cond.groups[0][1].acls[0].values, ['example.com']);
  assert.equal(www.useBackends[1].cond.groups.length, 2);
  assert.equal(www.services.length, 1);
  const webs = cfg.proxies.find((p) => p.name === 'webs')!;
  assert.deepEqual(webs.httpchk, { method: 'GET', uri: '/health', version: 'HTTP/1.1', host: 'www' });
  assert.deepEqual(webs.checkExpect, { kind: 'status', negate: false, value: '200-299,304' });
  const [a, b] = webs.servers;
  assert.deepEqual(
    [a.inter, a.fastinter, a.downinter, a.rise, a.fall, a.weight, a.maxconn, a.slowstart, a.observe, a.errorLimit, a.onError],
    [1000, 200, 5000, 3, 2, 10, 50, 30000, 'layer7', 5, 'mark-down'],
  );
  assert.deepEqual([b.backup, b.disabled], [true, true]);
  const t = effectiveTimeouts(www, webs);
  assert.deepEqual([t.connect, t.client, t.server, t.httpRequest, t.httpKeepAlive, t.queue], [5000, 60000, 50000, 10000, 10000, 5000]);
});

test('stats page and socket details: description, show-node, server id, stats timeout, expose-fd', () => {
  const cfg = parse(
    'global\n    stats socket /run/a.sock level admin expose-fd listeners\n    stats timeout 2m\nlisten l\n    mode http\n    bind :1\n    description the web farm\n    stats enable\n    stats show-node lb01\n    server s 1.1.1.1:1 id 7\n',
  );
  assert.equal(cfg.global.statsTimeout, 120000);
  assert.match(cfg.warnings[0].message, /expose-fd listeners' is not needed/);
  const p = cfg.proxies[0];
  assert.equal(p.description, 'the web farm');
  assert.equal(p.stats.showNode, 'lb01');
  assert.equal(p.servers[0].id, 7);
});

test('an unknown keyword is an error with its file, line and keyword', () => {
  const a = alerts('global\n    maxconn 10\n\nlisten x 127.0.0.1:1\n    mode http\n    frobnicate on\n    server s 127.0.0.1:2 check\n');
  assert.deepEqual(a, ["[ALERT] parsing [test.cfg:6] : 'frobnicate' : unknown keyword 'frobnicate' in 'listen' section"]);
});

test('every alert is reported, not only the first', () => {
  const a = alerts(
    'global\n    bogus\ndefaults\n    mode ftp\nbackend b\n    server s 1.2.3.4 check\n    server t 1.2.3.4:80 chekc\n    option nosuch\n',
  );
  assert.equal(a.length, 5);
  assert.match(a[0], /test\.cfg:2\] : 'bogus'/);
  assert.match(a[1], /test\.cfg:4\] : 'mode' : expects 'http' or 'tcp'/);
  assert.match(a[2], /test\.cfg:6\] : 'server' : missing port/);
  assert.match(a[3], /test\.cfg:7\] : 'server' : unknown server keyword 'chekc'/);
  assert.match(a[4], /test\.cfg:8\] : 'option' : unknown option 'nosuch'/);
});

test('cross-checks: missing backend, frontend without bind, duplicate servers, tcp/http mismatch', () => {
  const a = alerts(`defaults
    mode http
frontend f
    default_backend nope
frontend g
    bind :80
    use_backend t if { path / }
backend t
    mode tcp
    server s 1.1.1.1:1
    server s 1.1.1.2:1
`);
  assert.ok(a.some((x) => /unable to find required backend 'nope'/.test(x)));
  assert.ok(a.some((x) => /has no 'bind' directive/.test(x)));
  assert.ok(a.some((x) => /two servers named 's'/.test(x)));
  assert.ok(a.some((x) => /HTTP proxy 'g' cannot use TCP backend 't'/.test(x)));
});

test('unsupported features are refused, never ignored', () => {
  for (const line of [
    'option allbackups',
    'balance hdr(host)',
    'timeout tarpit 1s',
    'http-request deny',
    'cookie SRV insert maxidle 30m',
  ]) {
    const a = alerts(`listen x\n    bind :1\n    ${line}\n`);
    assert.equal(a.length, 1, line);
    assert.match(a[0], /test\.cfg:3\]/);
  }
});

test('a new defaults section resets the previous one', () => {
  const cfg = parse(
    'defaults\n    mode http\n    retries 7\nbackend a\n    server s 1.1.1.1:1\ndefaults\n    timeout connect 1s\nbackend b\n    server s 1.1.1.1:1\n',
  );
  const [a, b] = cfg.proxies;
  assert.deepEqual([a.mode, a.retries], ['http', 7]);
  assert.deepEqual([b.mode, b.retries, b.timeouts.connect], ['tcp', 3, 1000]);
});

test('tokenizer and time units', () => {
  assert.deepEqual(tokenize('  stats  auth "ad min":p\\ w # comment'), ['stats', 'auth', 'ad min:p w']);
  assert.deepEqual(tokenize("a 'b#c' d"), ['a', 'b#c', 'd']);
  assert.throws(() => tokenize('a "b'));
  assert.deepEqual(['100', '100ms', '2s', '1m', '1h', '1d', '1500us'].map(parseTime), [100, 100, 2000, 60000, 3600000, 86400000, 2]);
  assert.throws(() => parseTime('1w'));
});

test('cpu-map: forms, errors with their line, and which CPUs each worker gets', () => {
  const lx = 'listen x\n    bind 127.0.0.1:1\n    server s 127.0.0.1:2\n';
  const g = (lines: string) => parse(`global\n${lines}${lx}`).global;
  // HAProxy's forms: all threads, one thread, a range one CPU each (auto:), CPUs as ranges or lists
  const m = g('    nbthread 4\n    cpu-map 1/all 0-3\n    cpu-map 1/2 5,7\n    cpu-map auto:1/3-4 8 9\n');
  assert.deepEqual(
    m.cpuMaps.map(({ auto, from, to, cpus, line }) => ({ auto, from, to, cpus, line })),
    [
      { auto: false, from: 1, to: Infinity, cpus: [0, 1, 2, 3], line: 3 },
      { auto: false, from: 2, to: 2, cpus: [5, 7], line: 4 },
      { auto: true, from: 3, to: 4, cpus: [8, 9], line: 5 },
    ],
  );
  // the last line that names a worker's thread decides; auto: one CPU each, in order
  assert.deepEqual(
    [0, 1, 2, 3].map((slot) => workerCpus(m, slot)),
    [[0, 1, 2, 3], [5, 7], [8], [9]],
  );

  // default: no cpu-map line, every worker free (as HAProxy 2.6's threads), whatever the worker count
  const none = g('');
  assert.deepEqual(
    [0, 1].map((slot) => workerCpus(none, slot)),
    [null, null],
  );
  assert.equal(workerCpus(g('    nbthread 2\n'), 0), null);
  // any cpu-map line turns the default off for the threads it does not name
  assert.equal(workerCpus(g('    cpu-map 1/1 0\n'), 1), null);

  assert.deepEqual(
    alerts(`global\n    cpu-map 2/1 0\n    cpu-map 1/x 0\n    cpu-map 1/1 a-b\n    cpu-map auto:1/1-2 0\n    cpu-map 1/1\n${lx}`),
    [
      "[ALERT] parsing [test.cfg:2] : 'cpu-map' : 'cpu-map' process set '2': this proxy is one process with worker threads (use 1/<threads>)",
      "[ALERT] parsing [test.cfg:3] : 'cpu-map' : invalid thread set 'x' in 'cpu-map' (all, N or N-M)",
      "[ALERT] parsing [test.cfg:4] : 'cpu-map' : invalid CPU set 'a-b' (expects numbers and ranges like 0-3)",
      "[ALERT] parsing [test.cfg:5] : 'cpu-map' : 'cpu-map auto:' maps one thread per CPU: 2 threads but 1 CPUs",
      "[ALERT] parsing [test.cfg:6] : 'cpu-map' : 'cpu-map' expects [auto:]<process>[/<threads>] and a CPU set",
    ],
  );
});

// Keywords out of their place, as HAProxy 2.6 judges them (test/integration/proxy/strict.test.ts checks every one
// against haproxy -c): ignored with HAProxy's warning in a section without the capability they need, or refused.
test('a keyword in a section without its capability: ignored with a warning; some refused', () => {
  const base = 'defaults\n    mode http\n    timeout connect 1s\n    timeout client 1s\n    timeout server 1s\n';
  const fe = (line: string) =>
    `${base}frontend f\n    bind 127.0.0.1:1\n    ${line}\n    default_backend b\nbackend b\n    server s 127.0.0.1:2\n`;
  const be = (line: string) =>
    `${base}frontend f\n    bind 127.0.0.1:1\n    default_backend b\nbackend b\n    ${line}\n    server s 127.0.0.1:2\n`;
  const warnings = (text: string) => parseConfig([{ file: 'h.cfg', text }]).warnings.map((w) => formatAlert(w, 'WARNING'));
  const cases: [string, string][] = [
    [
      be('maxconn 10'),
      "parsing [h.cfg:10] : 'maxconn' ignored because backend 'b' has no frontend capability. Maybe you want 'fullconn' instead ?",
    ],
    [
      fe('fullconn 10'),
      "parsing [h.cfg:8] : 'fullconn' ignored because frontend 'f' has no backend capability. Maybe you want 'maxconn' instead ?",
    ],
    [fe('balance leastconn'), "parsing [h.cfg:8] : 'balance' ignored because frontend 'f' has no backend capability."],
    [fe('retries 2'), "'retries' ignored because frontend 'f' has no backend capability."],
    [fe('option redispatch'), "'redispatch' ignored because frontend 'f' has no backend capability."],
    [fe('option httpchk GET /'), "'httpchk' ignored because frontend 'f' has no backend capability."],
    [fe('timeout server 3s'), "'timeout server' will be ignored because frontend 'f' has no backend capability"],
    [be('timeout client 3s'), "'timeout client' will be ignored because backend 'b' has no frontend capability"],
    [be('option dontlognull'), "'dontlognull' ignored because backend 'b' has no frontend capability."],
    [be('option httplog'), "backend 'b' : 'option httplog' directive is ignored in backends."],
    [be('bind 127.0.0.1:3'), "'bind' ignored because backend 'b' has no frontend capability."],
    [be('monitor-uri /m'), "'monitor-uri' ignored because backend 'b' has no frontend capability."],
    [be('http-check expect status 200'), "[WARNING] backend 'b' uses http-check rules without 'option httpchk', so the rules are ignored."],
  ];
  for (const [text, want] of cases) {
    const w = warnings(text);
    assert.ok(
      w.some((x) => x.includes(want)),
      `${want}\n  got: ${w.join(' | ')}`,
    );
  }
  // ignored means not applied
  const c = parseConfig([{ file: 'h.cfg', text: be('maxconn 10') }]);
  assert.equal(c.proxies.find((p) => p.name === 'b')!.maxconn, c.global.maxconn);
  assert.equal(parseConfig([{ file: 'h.cfg', text: fe('balance leastconn') }]).proxies[0].balance, 'roundrobin');
  // and in its own place, no warning
  assert.deepEqual(warnings(be('balance leastconn')), []);
  // default_backend is allowed in defaults; acl and http-request rules in a backend
  assert.deepEqual(
    warnings(
      `${base}    default_backend b\nfrontend f\n    bind 127.0.0.1:1\nbackend b\n    acl m path /metrics\n    http-request use-service prometheus-exporter if m\n    server s 127.0.0.1:2\n`,
    ),
    [],
  );
});

test('refused where HAProxy 2.6 refuses: server in a frontend, bind and description in defaults, nbproc, option forceclose', () => {
  const refused = (text: string): string[] => {
    try {
      parseConfig([{ file: 'h.cfg', text }]);
    } catch (e) {
      return (e as ConfigError).alerts.map((a) => formatAlert(a));
    }
    return [];
  };
  const d = 'defaults\n    mode http\n';
  assert.deepEqual(refused(`${d}frontend f\n    bind 127.0.0.1:1\n    server s 127.0.0.1:2\n`), [
    "[ALERT] parsing [h.cfg:5] : 'server' not allowed because frontend 'f' has no backend capability.",
  ]);
  assert.deepEqual(refused(`${d}    bind 127.0.0.1:1\n`), ["[ALERT] parsing [h.cfg:3] : 'bind' not allowed in 'defaults' section."]);
  assert.deepEqual(refused(`${d}    description x\n`), ["[ALERT] parsing [h.cfg:3] : 'description' not allowed in 'defaults' section."]);
  assert.deepEqual(refused(`${d}    acl a path /\n`), ["[ALERT] parsing [h.cfg:3] : 'acl' not allowed in anonymous 'defaults' section."]);
  assert.match(refused('global\n    nbproc 2\n')[0], /'nbproc' : nbproc is not supported any more since HAProxy 2.5/);
  assert.match(refused(`${d}    option forceclose\n`)[0], /option 'forceclose' is not supported any more since HAProxy 2.0/);
});

test('cookie persistence: the backend cookie, the servers their values, and what is refused by name', () => {
  const base = 'defaults\n    mode http\n    timeout connect 1s\n    timeout client 1s\n    timeout server 1s\n';
  const cfg = parse(
    base +
      'backend web\n    cookie SERVERID insert indirect nocache httponly secure domain .example.org\n' +
      '    default-server cookie dflt\n    server s1 127.0.0.1:81 cookie s1\n    server s2 127.0.0.1:82\n',
  );
  const be = cfg.proxies[0];
  assert.deepEqual(be.cookie, {
    name: 'SERVERID',
    mode: 'insert',
    indirect: true,
    nocache: true,
    postonly: false,
    preserve: false,
    httponly: true,
    secure: true,
    domains: ['.example.org'],
  });
  assert.deepEqual(
    be.servers.map((s) => s.cookie),
    ['s1', 'dflt'],
  );
  assert.equal(parse(base + 'backend b\n    cookie JSESSIONID prefix\n').proxies[0].cookie?.mode, 'prefix');
  assert.equal(parse(base + 'backend b\n    cookie SRV\n').proxies[0].cookie?.mode, 'passive');
  for (const [line, msg] of [
    ['cookie S insert maxidle 30m', "cookie option 'maxidle' is not supported by this proxy"],
    ['cookie S insert maxlife 1h', "cookie option 'maxlife' is not supported by this proxy"],
    ['cookie S insert dynamic', "cookie option 'dynamic' is not supported by this proxy"],
    ['cookie S insert attr SameSite=Lax', "cookie option 'attr' is not supported by this proxy"],
    ['cookie S insert bogus', "'cookie' supports 'rewrite', 'insert'"],
    ['cookie S rewrite indirect', "cookie 'rewrite' and 'indirect' modes are incompatible."],
    ['cookie S insert prefix', "cookie 'rewrite', 'insert' and 'prefix' modes are incompatible."],
    ['cookie S preserve', "cookie 'preserve' requires at least 'insert' or 'indirect'."],
    ['cookie', "'cookie' expects <cookie_name> as argument."],
    ['server s1 127.0.0.1:81 cookie', "server keyword 'cookie' expects an argument"],
  ]) {
    const a = alerts(base + `backend b\n    ${line}\n`);
    assert.ok(a.length === 1 && a[0].includes('test.cfg:7') && a[0].includes(msg), `${line}: ${a.join(' ')}`);
  }
  // in a frontend: ignored with HAProxy's warning; on a tcp server: ignored with a warning
  const w = parse(
    base +
      'frontend f\n    bind :80\n    cookie S insert\n    default_backend b\nbackend b\n    server s 127.0.0.1:1\nbackend t\n    mode tcp\n    server s 127.0.0.1:1 cookie x\n',
  );
  assert.ok(w.warnings.some((x) => x.message === "'cookie' ignored because frontend 'f' has no backend capability."));
  assert.ok(w.warnings.some((x) => x.message === "backend 't' : ignoring cookie for server 's' as HTTP mode is disabled."));
  assert.equal(w.proxies[0].cookie, undefined);
  assert.equal(w.proxies[2].servers[0].cookie, undefined);
});
