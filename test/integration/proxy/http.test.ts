// HTTP/1 behaviour on the wire: keep-alive against close modes, chunked bodies, 100-continue, Upgrade
// tunnelling, 502/504, request smuggling defences, oversized headers, slowloris, use_backend ACLs, Prometheus.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import http from 'node:http';
import { fakeBackend, freePort, get, raw, startProxy, sleep, type FakeBackend, type ProxyProc } from './helpers.ts';

interface Rig {
  echo: net.Server;
  port: number;
  ports: Record<string, number>;
  b: FakeBackend;
  api: FakeBackend;
  px: ProxyProc;
}

async function rig(): Promise<Rig> {
  const b = await fakeBackend('web');
  const api = await fakeBackend('api');
  // an Upgrade-capable echo server: answers 101, then sends back whatever it gets
  const echo = net.createServer((s) => {
    let head = '';
    s.on('data', function onData(d) {
      head += d.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      s.off('data', onData);
      s.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
      const rest = head.slice(head.indexOf('\r\n\r\n') + 4);
      if (rest) s.write(rest);
      s.pipe(s);
    });
  });
  await new Promise<void>((res) => echo.listen(0, '127.0.0.1', () => res()));
  const ePort = (echo.address() as net.AddressInfo).port;
  const ports = { ka: await freePort(), close: await freePort(), sclose: await freePort(), ws: await freePort() };
  const cfg = `global
    nbthread 1
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 400ms
    timeout http-request 300ms
    option forwardfor

frontend ka
    bind 127.0.0.1:${ports.ka}
    option http-keep-alive
    acl is_api path_beg /api/
    acl api_host hdr(host) -i api.example
    use_backend apis if is_api || api_host
    http-request use-service prometheus-exporter if { path /metrics }
    default_backend webs

frontend closing
    bind 127.0.0.1:${ports.close}
    option httpclose
    default_backend webs

frontend serverclose
    bind 127.0.0.1:${ports.sclose}
    option http-server-close
    default_backend webs

backend webs
    server web 127.0.0.1:${b.port}

backend apis
    server api 127.0.0.1:${api.port}

listen ws
    bind 127.0.0.1:${ports.ws}
    timeout tunnel 5s
    server e 127.0.0.1:${ePort}
`;
  const px = await startProxy(cfg, ports.ka);
  return { echo, port: ports.ka, ports, b, api, px };
}

test('HTTP on the wire', async (t) => {
  const r = await rig();
  t.after(async () => {
    await r.px.stop();
    await r.b.close();
    await r.api.close();
    r.echo.close();
  });

  await t.test('keep-alive: one client connection, several requests, the server connection reused', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const before = r.b.requests.length;
    for (let i = 0; i < 3; i++) {
      const res = await get(r.port, `/k${i}`, { agent });
      assert.equal(res.status, 200);
      assert.notEqual(res.headers.connection, 'close');
    }
    agent.destroy();
    const seen = r.b.requests.slice(before);
    assert.equal(new Set(seen.map((s) => s.socketId)).size, 1, 'one server connection for the three requests');
    assert.equal(seen[0].headers['x-forwarded-for'], '127.0.0.1');
  });

  await t.test('httpclose: Connection: close to the server and to the client', async () => {
    const res = await raw(r.ports.close, 'GET /c HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.match(res.text, /^HTTP\/1\.1 200 /);
    assert.match(res.text, /\r\nconnection: close\r\n/i);
    assert.ok(res.closed, 'client connection closed');
    assert.equal(r.b.requests.at(-1)!.headers.connection, 'close');
  });

  await t.test('http-server-close: the client keeps its connection, the server side closes', async () => {
    const res = await raw(r.ports.sclose, 'GET /s1 HTTP/1.1\r\nHost: x\r\n\r\nGET /s2 HTTP/1.1\r\nHost: x\r\n\r\n', 800);
    assert.equal(res.text.match(/HTTP\/1\.1 200 /g)?.length, 2, 'two responses on one connection (pipelined)');
    assert.doesNotMatch(res.text, /connection: close/i);
    const last = r.b.requests.slice(-2);
    assert.deepEqual(
      last.map((x) => x.url),
      ['/s1', '/s2'],
    );
    assert.ok(last.every((x) => x.headers.connection === 'close'));
    assert.notEqual(last[0].socketId, last[1].socketId);
  });

  await t.test('HTTP/1.0 client without keep-alive gets a closed connection', async () => {
    const res = await raw(r.port, 'GET /old HTTP/1.0\r\n\r\n');
    assert.match(res.text, /^HTTP\/1\.[01] 200 /);
    assert.ok(res.closed);
  });

  await t.test('chunked request and response bodies pass through', async () => {
    const res = await raw(
      r.port,
      'POST /chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n',
    );
    assert.match(res.text, /^HTTP\/1\.1 200 /);
    assert.equal(r.b.requests.at(-1)!.body, 'hello world');
  });

  await t.test('100-continue: the interim response is relayed, then the final one', async () => {
    const res = await raw(
      r.port,
      ['POST /cont HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n', 'data'],
      3000,
      150,
    );
    assert.match(res.text, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /);
    assert.equal(r.b.requests.at(-1)!.body, 'data');
  });

  await t.test('use_backend with path_beg and hdr(host) ACLs', async () => {
    assert.match((await get(r.port, '/api/x')).body, /^api /);
    assert.match((await get(r.port, '/other', { headers: { host: 'API.example' } })).body, /^api /);
    assert.match((await get(r.port, '/other')).body, /^web /);
  });

  await t.test('Prometheus endpoint', async () => {
    const res = await get(r.port, '/metrics');
    assert.equal(res.status, 200);
    assert.match(res.body, /^haproxy_server_status\{proxy="webs",server="web",state="UP"\} 1$/m);
    assert.match(res.body, /^haproxy_frontend_http_requests_total\{proxy="ka"\} \d+$/m);
  });

  await t.test('request smuggling: CL+TE, conflicting CL, bad TE, bare LF, folding are refused with 400', async () => {
    const bad = [
      'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
      'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde',
      'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4, 5\r\n\r\nabcde',
      'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n',
      'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n',
      'GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n',
      'GET / HTTP/1.1\r\nHost: x\nX: y\r\n\r\n',
      'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n',
      'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n',
      'GET /a b HTTP/1.1\r\nHost: x\r\n\r\n',
    ];
    const before = r.b.requests.length;
    for (const req of bad) {
      const res = await raw(r.port, req);
      assert.match(res.text, /^HTTP\/1\.1 400 /, JSON.stringify(req));
      assert.ok(res.closed, 'closed after the error');
    }
    // a chunk error is found after the head went out; every other one never reached the server
    assert.ok(r.b.requests.length - before <= 1);
  });

  await t.test('oversized headers: 431', async () => {
    const res = await raw(r.port, `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20000)}\r\n\r\n`);
    assert.match(res.text, /^HTTP\/1\.1 431 /);
  });

  await t.test('Upgrade: a WebSocket-style tunnel carries bytes both ways', async () => {
    const res = await raw(
      r.ports.ws,
      ['GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n', 'ping-through-tunnel'],
      800,
      100,
    );
    const text = res.text;
    assert.match(text, /^HTTP\/1\.1 101 /);
    assert.match(text, /\r\n\r\nping-through-tunnel$/);
  });
});

test('responses without a body, close-delimited bodies, and servers that close idle connections', async (t) => {
  // a raw backend: HEAD, 204 and 304 without a body, a close-delimited answer, and a short keep-alive timeout
  let conns = 0;
  const be = net.createServer((s) => {
    conns++;
    let buf = '';
    const idle = () => setTimeout(() => s.end(), 150);
    let timer = idle();
    s.on('error', () => {});
    s.on('data', (d) => {
      buf += d.toString('latin1');
      let i: number;
      while ((i = buf.indexOf('\r\n\r\n')) >= 0) {
        const head = buf.slice(0, i);
        buf = buf.slice(i + 4);
        clearTimeout(timer);
        timer = idle();
        const [method, url] = head.split(' ');
        if (url === '/204') s.write('HTTP/1.1 204 No Content\r\n\r\n');
        else if (url === '/304') s.write('HTTP/1.1 304 Not Modified\r\nETag: "x"\r\n\r\n');
        else if (url === '/eof') {
          clearTimeout(timer);
          s.end('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end');
        } else s.write(`HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n${method === 'HEAD' ? '' : 'hello'}`);
      }
    });
  });
  await new Promise<void>((res) => be.listen(0, '127.0.0.1', () => res()));
  const port = await freePort();
  const px = await startProxy(
    `global\n    nbthread 1\ndefaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\nlisten l\n    bind 127.0.0.1:${port}\n    server s 127.0.0.1:${(be.address() as net.AddressInfo).port}\n`,
    port,
  );
  t.after(async () => {
    await px.stop();
    be.close();
  });
  const r = await raw(
    port,
    'HEAD /h HTTP/1.1\r\nHost: x\r\n\r\nGET /204 HTTP/1.1\r\nHost: x\r\n\r\nGET /304 HTTP/1.1\r\nHost: x\r\n\r\nGET /g HTTP/1.1\r\nHost: x\r\n\r\n',
    1000,
  );
  const statuses = [...r.text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1]);
  assert.deepEqual(statuses, ['200', '204', '304', '200'], r.text);
  assert.match(r.text, /\r\n\r\nhello$/);
  const eof = await raw(port, 'GET /eof HTTP/1.1\r\nHost: x\r\n\r\n');
  assert.match(eof.text, /connection: close\r\n\r\nuntil the end$/);
  assert.ok(eof.closed);
  // the server closes idle connections after 150 ms: requests spaced wider never fail
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  for (let i = 0; i < 4; i++) {
    assert.equal((await get(port, `/ka${i}`, { agent })).body, 'hello');
    await sleep(200);
  }
  agent.destroy();
  assert.ok(conns >= 4);
});

test('502 on a reset, 504 on a server timeout, slowloris cut at timeout http-request without blocking others', async (t) => {
  const r = await rig();
  t.after(async () => {
    await r.px.stop();
    await r.b.close();
    await r.api.close();
    r.echo.close();
  });
  r.b.mode = { kind: 'reset' };
  assert.equal((await get(r.port, '/reset')).status, 502);
  r.b.mode = { kind: 'hang' };
  assert.equal((await get(r.port, '/hang')).status, 504);
  r.b.mode = { kind: 'ok' };

  // ten slow clients sending one header byte at a time; a normal client is served meanwhile
  const slow = Array.from({ length: 10 }, () =>
    raw(r.port, ['GET / HTTP/1.1\r\n', 'H', 'o', 's', 't', ':', ' ', 'x', '\r', '\n', 'X'], 3000, 60),
  );
  await sleep(50);
  const ok = await get(r.port, '/fast');
  assert.equal(ok.status, 200);
  const cut = await Promise.all(slow);
  for (const c of cut) {
    assert.ok(c.closed, 'slow client disconnected');
    assert.match(c.text, /^HTTP\/1\.1 408 /);
  }
});

test('timeout server is inactivity: a server trickling its answer is served, one that goes quiet is cut', async (t) => {
  // answers 5 body bytes, one every 150 ms (/trickle), or 2 bytes and then nothing (/stall); every request of a
  // connection is answered (the proxy may send /stall on the connection /trickle left idle)
  const srv = net.createServer((s) => {
    s.on('error', () => {});
    s.on('data', async (d) => {
      const stall = d.toString('latin1').startsWith('GET /stall');
      s.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n');
      for (let i = 0; i < (stall ? 2 : 5); i++) {
        await sleep(150);
        if (!s.destroyed) s.write('x');
      }
    });
  });
  await new Promise<void>((res) => srv.listen(0, '127.0.0.1', () => res()));
  const port = await freePort();
  const px = await startProxy(
    `defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 400ms
listen slow
    bind 127.0.0.1:${port}
    server s 127.0.0.1:${(srv.address() as net.AddressInfo).port}
`,
    port,
  );
  t.after(async () => {
    await px.stop();
    srv.close();
  });
  const t0 = Date.now();
  const ok = await raw(port, 'GET /trickle HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 5000);
  assert.ok(Date.now() - t0 >= 700, 'the answer took longer than the timeout in all');
  assert.ok(ok.closed);
  assert.match(ok.text, /^HTTP\/1\.1 200 [^]*\r\n\r\nxxxxx$/);
  const t1 = Date.now();
  const cut = await raw(port, 'GET /stall HTTP/1.1\r\nHost: x\r\n\r\n', 5000);
  const took = Date.now() - t1;
  assert.ok(cut.closed, 'the client connection is closed');
  assert.match(cut.text, /\r\n\r\nxx$/, 'the answer stops after the bytes the server sent');
  assert.ok(took >= 650 && took < 2000, `cut about 400 ms after the last byte (after ${took} ms)`);
});
