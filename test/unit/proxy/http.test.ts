// The HTTP/1 head parser, the chunked tracker, the balancer and the httplog line, without sockets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ChunkedTracker, HttpError, findHeadEnd, parseRequestHead, parseResponseHead } from '../../../runtime/proxy/http.ts';
import { Backend } from '../../../runtime/proxy/balance.ts';
import { Doorbells, SharedState } from '../../../runtime/proxy/shared.ts';
import { parseConfig } from '../../../runtime/proxy/config.ts';
import { httpLogLine } from '../../../runtime/proxy/log.ts';

function req(text: string) {
  const b = Buffer.from(text, 'latin1');
  const end = findHeadEnd(b);
  assert.ok(end > 0, 'complete head');
  return parseRequestHead(b, end);
}

function status(text: string): number {
  try {
    req(text);
    return 0;
  } catch (e) {
    assert.ok(e instanceof HttpError, String(e));
    return e.status;
  }
}

test('request heads: framing and connection semantics', () => {
  const r = req('POST /x?y HTTP/1.1\r\nHost: h\r\nContent-Length: 12\r\nConnection: keep-alive\r\n\r\n');
  assert.deepEqual(
    [r.method, r.uri, r.path, r.version, r.contentLength, r.chunked, r.keepAlive],
    ['POST', '/x?y', '/x?y', 11, 12, false, true],
  );
  assert.equal(req('GET / HTTP/1.0\r\n\r\n').keepAlive, false);
  assert.equal(req('GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n').keepAlive, true);
  assert.equal(req('GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n').keepAlive, false);
  assert.equal(req('GET http://h/p/q HTTP/1.1\r\nHost: h\r\n\r\n').path, '/p/q');
  assert.equal(req('GET / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n').chunked, true);
  assert.equal(req('GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 3\r\n\r\n').contentLength, 3);
  assert.equal(req('GET /ws HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n').upgrade, true);
});

test('request heads: ambiguous or malformed ones are refused', () => {
  const cases: [string, number][] = [
    ['POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n', 400],
    ['POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n', 400],
    ['POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +1\r\n\r\n', 400],
    ['POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n', 400],
    ['POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n', 400],
    ['POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n', 400],
    ['GET / HTTP/1.1\r\nHost: h\r\nBad Name: x\r\n\r\n', 400],
    ['GET / HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n', 400],
    ['GET / HTTP/1.1\r\n\r\n', 400],
    ['GET / HTTP/2.0\r\nHost: h\r\n\r\n', 505],
    ['GET / XTTP/1.1\r\nHost: h\r\n\r\n', 400],
    ['G(T / HTTP/1.1\r\nHost: h\r\n\r\n', 400],
    ['GET /\x01 HTTP/1.1\r\nHost: h\r\n\r\n', 400],
    ['GET / HTTP/1.1\r\nHost: h\r\nX: a\x00b\r\n\r\n', 400],
    ['CONNECT h:443 HTTP/1.1\r\nHost: h\r\n\r\n', 405],
  ];
  for (const [text, code] of cases) assert.equal(status(text), code, JSON.stringify(text));
});

test('response heads', () => {
  const b = Buffer.from('HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n');
  const r = parseResponseHead(b, findHeadEnd(b));
  assert.deepEqual([r.status, r.reason, r.keepAlive, r.contentLength], [204, 'No Content', false, -1]);
  const b2 = Buffer.from('HTTP/1.1 200\r\nTransfer-Encoding: chunked\r\n\r\n');
  assert.equal(parseResponseHead(b2, findHeadEnd(b2)).chunked, true);
  const b3 = Buffer.from('HTTP/1.1 2000 x\r\n\r\n');
  assert.throws(() => parseResponseHead(b3, findHeadEnd(b3)), HttpError);
  const parse = (t: string) => {
    const x = Buffer.from(t);
    return parseResponseHead(x, findHeadEnd(x));
  };
  assert.deepEqual(
    [parse('HTTP/1.0 404 Not Found\r\nContent-Length: 12\r\n\r\n')].map((x) => [
      x.version,
      x.status,
      x.reason,
      x.contentLength,
      x.keepAlive,
    ]),
    [[10, 404, 'Not Found', 12, false]],
  );
  assert.equal(parse('HTTP/1.1 599\r\n\r\n').status, 599);
  assert.equal(parse('HTTP/1.1 100 Continue\r\n\r\n').status, 100);
  // a bare CR or LF in the reason, a status below 100, a non-digit status: 502 (a bad answer from the server)
  for (const bad of [
    'HTTP/1.1 200 O\rK\r\n\r\n',
    'HTTP/1.1 200 O\nK\r\nX: y\r\n\r\n',
    'HTTP/1.1 099 Low\r\n\r\n',
    'HTTP/1.1 2x0 OK\r\n\r\n',
  ])
    assert.throws(
      () => parse(bad),
      (e: unknown) => e instanceof HttpError && e.status === 502,
      JSON.stringify(bad),
    );
  // framing noted in one parse does not leak into the next
  assert.equal(parse('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n').chunked, true);
  const next = parse('HTTP/1.1 200 OK\r\n\r\n');
  assert.deepEqual([next.chunked, next.contentLength, next.keepAlive, next.hopByHop], [false, -1, true, false]);
});

test('chunked tracker: finds the end across arbitrary splits, rejects bad framing', () => {
  const body = '4\r\nWiki\r\n5;a=b\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nTrailer: x\r\n\r\n';
  const next = 'GET /next HTTP/1.1\r\n';
  for (let split = 1; split < body.length; split += 3) {
    const t = new ChunkedTracker();
    const all = Buffer.from(body + next);
    const n1 = t.feed(all.subarray(0, split));
    assert.equal(n1, split);
    const n2 = t.feed(all.subarray(split));
    assert.equal(t.done, true);
    assert.equal(split + n2, body.length);
  }
  for (const bad of ['x\r\n', '4\r\nWikiX\r\n', '4\nWiki', '1234567890abcdef0\r\n', '0\r\nbad\nx']) {
    const t = new ChunkedTracker();
    assert.throws(() => t.feed(Buffer.from(bad)), HttpError, bad);
  }
});

function backend(lines: string) {
  const cfg = parseConfig([{ file: 't', text: `backend b\n    mode http\n${lines}` }]);
  const be = new Backend(cfg.proxies[0], new SharedState(cfg), new Doorbells(Doorbells.create(), 0, 1), new Set());
  for (const s of be.servers) {
    s.up = true;
    s.admin = s.cfg.disabled ? 'maint' : 'ready';
  }
  return be;
}

test('balancing: weighted round robin, leastconn, source, first, backups, maxconn', () => {
  const rr = backend('    server a 1.1.1.1:1 weight 2\n    server b 1.1.1.2:1\n');
  const seq = Array.from({ length: 6 }, () => (rr.pick('1.2.3.4', '/', null) as { cfg: { name: string } }).cfg.name);
  assert.deepEqual(seq, ['a', 'b', 'a', 'a', 'b', 'a']);

  const lc = backend('    balance leastconn\n    server a 1.1.1.1:1\n    server b 1.1.1.2:1\n');
  lc.servers[0].cur = 3;
  assert.equal((lc.pick('x', '/', null) as { cfg: { name: string } }).cfg.name, 'b');

  const src = backend('    balance source\n    server a 1.1.1.1:1\n    server b 1.1.1.2:1\n    server c 1.1.1.3:1\n');
  const first = src.pick('10.0.0.7', '/', null);
  for (let i = 0; i < 5; i++) assert.equal(src.pick('10.0.0.7', '/', null), first);

  const fst = backend('    balance first\n    server a 1.1.1.1:1 maxconn 1\n    server b 1.1.1.2:1 maxconn 1\n');
  assert.equal((fst.pick('x', '/', null) as { cfg: { name: string } }).cfg.name, 'a');
  fst.servers[0].cur = 1;
  assert.equal((fst.pick('x', '/', null) as { cfg: { name: string } }).cfg.name, 'b');
  fst.servers[1].cur = 1;
  assert.equal(fst.pick('x', '/', null), 'full');

  const bk = backend('    server a 1.1.1.1:1\n    server b 1.1.1.2:1 backup\n');
  for (let i = 0; i < 3; i++) assert.equal((bk.pick('x', '/', null) as { cfg: { name: string } }).cfg.name, 'a');
  bk.servers[0].up = false;
  assert.equal((bk.pick('x', '/', null) as { cfg: { name: string } }).cfg.name, 'b');
  bk.servers[1].admin = 'maint';
  assert.equal(bk.pick('x', '/', null), null);

  // redispatch: the previous server is avoided when another one is usable
  const rd = backend('    server a 1.1.1.1:1\n    server b 1.1.1.2:1\n');
  for (let i = 0; i < 4; i++) assert.equal((rd.pick('x', '/', rd.servers[0]) as { cfg: { name: string } }).cfg.name, 'b');
});

test('httplog line layout', () => {
  const line = httpLogLine({
    clientIp: '10.0.1.2',
    clientPort: 33317,
    start: new Date(2009, 1, 6, 12, 14, 14, 655).getTime(),
    frontend: 'http-in',
    backend: 'static',
    server: 'srv1',
    TR: 10,
    Tw: 0,
    Tc: 30,
    Tr: 69,
    Ta: 109,
    status: 200,
    bytes: 2750,
    term: '--',
    actconn: 1,
    feconn: 1,
    beconn: 1,
    srvconn: 1,
    retries: 0,
    redispatched: false,
    srvQueue: 0,
    backQueue: 0,
    requestLine: 'GET /index.html HTTP/1.1',
  });
  assert.equal(
    line,
    '10.0.1.2:33317 [06/Feb/2009:12:14:14.655] http-in static/srv1 10/0/30/69/109 200 2750 - - ---- 1/1/1/1/0 0/0 "GET /index.html HTTP/1.1"',
  );
});

test('slowstart: a server back UP gets a growing share of the weight', () => {
  const b = backend('    server a 1.1.1.1:1 weight 10 slowstart 10s\n    server b 1.1.1.2:1 weight 10\n');
  const a = b.servers[0];
  const now = Date.now();
  assert.equal(a.weight(now), 10, 'no ramp at start-up');
  a.since = now - 1000;
  assert.equal(a.weight(now), 1);
  a.since = now - 5000;
  assert.equal(a.weight(now), 5);
  a.since = now - 20000;
  assert.equal(a.weight(now), 10);
  // 5% through the ramp (weight 1 until the 10% mark): a gets about 1 request in 11
  a.since = Date.now() - 500;
  let na = 0;
  for (let i = 0; i < 110; i++) if ((b.pick('x', '/', null) as { cfg: { name: string } }).cfg.name === 'a') na++;
  assert.ok(na >= 8 && na <= 12, `a got ${na} of 110`);
});
