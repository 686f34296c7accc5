// What the proxy does once per configuration or per second instead of once per request (the CPU and garbage of a
// request, bench/proxy/cpu.ts): ACL values parsed once, the httplog date formatted once a second, request lines
// without anything to escape kept as they are, log lines encoded into one buffer kept from a turn to the next.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { findHeadEnd, parseRequestHead } from '../../../runtime/proxy/http.ts';
import { condMatch } from '../../../runtime/proxy/acl.ts';
import type { Condition } from '../../../runtime/proxy/config.ts';
import { FdLog, accessDate, httpLogLine, logEscape, type HttpLogFields } from '../../../runtime/proxy/log.ts';
import { encodeHttpLog, httpLogMax } from '../../../runtime/proxy/log-encode.ts';

const turn = () => new Promise((r) => setImmediate(r));

function req(text: string) {
  const b = Buffer.from(text, 'latin1');
  return parseRequestHead(b, findHeadEnd(b));
}

test('a path_reg ACL compiles its expressions once, not at each request; src networks and paths match as before', () => {
  const cond: Condition = {
    unless: false,
    groups: [
      [
        { negate: false, acls: [{ name: 'img', fetch: 'path_reg', ignoreCase: true, values: ['^/IMG/', '\\.png$'] }] },
        { negate: true, acls: [{ name: 'lan', fetch: 'src', ignoreCase: false, values: ['10.0.0.0/8', '192.168.1.7'] }] },
      ],
    ],
  };
  const Real = RegExp;
  let made = 0;
  globalThis.RegExp = new Proxy(Real, {
    construct(t, args) {
      made++;
      return Reflect.construct(t, args);
    },
  });
  const got: boolean[] = [];
  try {
    for (let i = 0; i < 50; i++) {
      got.push(condMatch(cond, req('GET /img/a.gif?x=1 HTTP/1.1\r\nHost: h\r\n\r\n'), '172.16.0.1'));
      got.push(condMatch(cond, req('GET /x/a.png HTTP/1.1\r\nHost: h\r\n\r\n'), '10.1.2.3'));
      got.push(condMatch(cond, req('GET /x/a.png?q=.png HTTP/1.1\r\nHost: h\r\n\r\n'), '::ffff:192.168.1.8'));
      got.push(condMatch(cond, req('GET /x/a.gif HTTP/1.1\r\nHost: h\r\n\r\n'), '192.168.1.8'));
      got.push(condMatch(cond, req('GET /x/a.png HTTP/1.1\r\nHost: h\r\n\r\n'), '192.168.1.7'));
    }
  } finally {
    globalThis.RegExp = Real;
  }
  assert.deepEqual(got.slice(0, 5), [true, false, true, false, false]);
  assert.ok(made <= 2, `${made} regular expressions made for 250 matches`);
});

test('the httplog date: the same text as formatting each time, across seconds, out of order, fractional ms', () => {
  const direct = (ms: number) => {
    const d = new Date(ms);
    const p = (n: number, w = 2) => String(n).padStart(w, '0');
    const mon = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'][d.getMonth()];
    return `${p(d.getDate())}/${mon}/${d.getFullYear()}:${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
  };
  const t0 = Date.UTC(2026, 2, 29, 0, 59, 58, 0); // around a daylight saving change in Europe
  const times = [t0, t0 + 999, t0 + 1000, t0 + 0.5, t0 + 1999.9, t0 - 1, t0 + 3_600_000, Date.UTC(2026, 11, 31, 23, 59, 59, 999)];
  for (let i = 0; i < 2000; i++) times.push(t0 + Math.floor(((i * 7919) % 7_200_000) * 1.37));
  for (const ms of times) assert.equal(accessDate(ms), direct(ms), String(ms));
});

test('a request line with nothing to escape is logged as it is; the others escaped as before', () => {
  assert.equal(logEscape('GET /a?b=c HTTP/1.1'), 'GET /a?b=c HTTP/1.1');
  assert.equal(logEscape('GET /"x"#y\u00e9\t HTTP/1.1'), 'GET /#22x#22#23y#E9#09 HTTP/1.1');
  assert.equal(logEscape(''), '');
});

test('log lines are encoded into one buffer, kept from one turn to the next; a backlog gives its growth back', async () => {
  const views: Buffer[] = [];
  const log = new FdLog(1, (_fd, b) => (views.push(b), b.length));
  log.push('first');
  const kept = log.storage;
  await turn();
  log.push('second line');
  log.push('third');
  await turn();
  assert.equal(log.storage, kept, 'the same buffer');
  assert.deepEqual(
    views.map((v) => v.buffer === kept.buffer),
    [true, true],
    'each write a view of it, no copy',
  );
  assert.equal(views[1].toString(), 'second line\nthird\n');
  assert.equal(log.pending, 0);
  // a turn with 200 KB of lines grows it; once written it is back to its usual size
  for (let i = 0; i < 2000; i++) log.push('z'.repeat(99));
  assert.ok(log.storage.length >= 200_000);
  await turn();
  assert.ok(log.storage.length <= FdLog.KEEP, `${log.storage.length} bytes kept`);
  assert.equal(log.pending, 0);
});

test('observe: a success goes to the control plane only after a failure, whichever worker saw which', async () => {
  const { parseConfig } = await import('../../../runtime/proxy/config.ts');
  const { DataPlane } = await import('../../../runtime/proxy/dataplane.ts');
  const { Doorbells, SharedState } = await import('../../../runtime/proxy/shared.ts');
  const cfg = parseConfig([
    {
      file: 't',
      text: 'defaults\n    mode http\nbackend web\n    server a 127.0.0.1:1 check observe layer4 error-limit 2 on-error mark-down\n    server b 127.0.0.1:2\n',
    },
  ]);
  const told: string[] = [];
  const link = {
    observe: (key: string, ok: boolean) => told.push(`${key} ${ok ? 'ok' : 'failed'}`),
    render: async () => ({ status: 200, headers: [], body: Buffer.alloc(0) }),
  };
  const sab = new SharedState(cfg).sab;
  const bells = Doorbells.create();
  const w1 = new DataPlane(cfg, link, { bells, worker: 0, workers: 2, sab });
  const w2 = new DataPlane(cfg, link, { bells, worker: 1, workers: 2, sab });
  const a1 = w1.world.bes.get('web')!.servers[0];
  const a2 = w2.world.bes.get('web')!.servers[0];
  const b1 = w1.world.bes.get('web')!.servers[1];
  w1.observe(a1, true, 'layer4'); // a new configuration: the first success is told (a count may be left from before)
  for (let i = 0; i < 100; i++) w1.observe(a1, true, 'layer4');
  for (let i = 0; i < 100; i++) w2.observe(a2, true, 'layer4');
  w1.observe(b1, false, 'layer4'); // not observed
  assert.deepEqual(told, ['web/a ok']);
  w2.observe(a2, false, 'layer4');
  w2.observe(a2, false, 'layer4');
  w1.observe(a1, true, 'layer4'); // the other worker's success clears the failures
  w1.observe(a1, true, 'layer4');
  w2.observe(a2, true, 'layer4');
  assert.deepEqual(told, ['web/a ok', 'web/a failed', 'web/a failed', 'web/a ok']);
});

test('the httplog line encoded into the log buffer: the bytes httpLogLine makes; a non-ASCII one is left to it', async () => {
  const base: HttpLogFields = {
    clientIp: '127.0.0.1',
    clientPort: 51234,
    start: Date.UTC(2026, 11, 6, 2, 3, 4, 5),
    frontend: 'www',
    backend: 'web',
    server: 'web01',
    TR: 0,
    Tw: 0,
    Tc: 1,
    Tr: 12,
    Ta: 13,
    status: 200,
    bytes: 143,
    term: '--',
    actconn: 3,
    feconn: 2,
    beconn: 1,
    srvconn: 1,
    retries: 0,
    redispatched: false,
    srvQueue: 0,
    backQueue: 0,
    requestLine: 'GET /a?b=c HTTP/1.1',
  };
  const cases: HttpLogFields[] = [
    base,
    { ...base, TR: -1, Tw: -1, Tc: -1, Tr: -1, status: -1, server: '<NOSRV>', term: 'CR', requestLine: '<BADREQ>' },
    { ...base, clientIp: '::ffff:10.213.0.10', Ta: 1234567890123, bytes: 2 ** 40, redispatched: true, retries: 3, backQueue: 52 },
    { ...base, Tr: 0.5, Ta: 1e21, bytes: 9, clientPort: 0, requestLine: logEscape('GET /"q"#\u00e9 HTTP/1.0') },
    { ...base, requestLine: '' },
  ];
  const writes: string[] = [];
  const log = new FdLog(1, (_fd, b) => (writes.push(b.toString('latin1')), b.length));
  for (const f of cases) assert.equal(log.pushEncoded(httpLogMax(f), encodeHttpLog, f), true);
  await turn();
  assert.equal(writes.join(''), cases.map((f) => httpLogLine(f) + '\n').join(''));
  // a name that is not ASCII: nothing kept, the caller logs httpLogLine's string
  assert.equal(log.pushEncoded(httpLogMax(base), encodeHttpLog, { ...base, server: 'w\u00e9b' }), false);
  assert.equal(log.pending, 0);
  const b = Buffer.alloc(httpLogMax(cases[2]));
  assert.ok(encodeHttpLog(b, 0, cases[2]) <= b.length);
});
