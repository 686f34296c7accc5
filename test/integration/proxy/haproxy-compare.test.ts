// Same scenario against Debian's HAProxy and against ours, on one config both accept (the seed's
// content in the modern spelling): the httplog fields and the stats CSV columns must line up.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import http from 'node:http';
import { writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { prerequisites, commandUnavailable } from '../../helpers/env.ts';
import {
  fakeBackend,
  freePort,
  get,
  parseCsv,
  startProxy,
  statsCommand,
  syslogSink,
  tmpDir,
  until,
  canConnect,
  type SyslogSink,
} from './helpers.ts';

interface Extra {
  deadPort: number;
  deadTarget: number;
  hangPort: number;
  hangTarget: number;
  resetPort: number;
  resetTarget: number;
  kaPort: number;
  tcpPort: number;
}

function config(port: number, logPort: number, b1: number, b2: number, sock: string, x: Extra): string {
  return `global
    log 127.0.0.1:${logPort} local0
    stats socket ${sock} level admin
    maxconn 4096
    nbthread 1

defaults
    log     global
    mode    http
    option  httplog
    option  dontlognull
    retries 3
    option redispatch
    maxconn 2000
    timeout connect 5000
    timeout client 50000
    timeout server 50000

listen webfarm
    bind 127.0.0.1:${port}
    mode http
    stats enable
    stats uri /haproxy?stats
    balance roundrobin
    option httpclose
    option forwardfor
    server web01 127.0.0.1:${b1} check
    server web02 127.0.0.1:${b2} check

listen deadfarm
    bind 127.0.0.1:${x.deadPort}
    mode http
    retries 2
    no option redispatch
    server gone 127.0.0.1:${x.deadTarget}

listen hangfarm
    bind 127.0.0.1:${x.hangPort}
    mode http
    timeout server 300
    server slow 127.0.0.1:${x.hangTarget}

listen resetfarm
    bind 127.0.0.1:${x.resetPort}
    mode http
    server rst 127.0.0.1:${x.resetTarget}

listen kafarm
    bind 127.0.0.1:${x.kaPort}
    mode http
    option http-keep-alive
    server ka1 127.0.0.1:${b1}

listen tcpfarm
    bind 127.0.0.1:${x.tcpPort}
    mode tcp
    option tcplog
    server t1 127.0.0.1:${b2}
`;
}

interface LogFields {
  frontend: string;
  backendServer: string;
  timers: string[];
  status: string;
  bytes: string;
  captures: string;
  term: string;
  conns: string[];
  queues: string[];
  request: string;
}

const HTTPLOG =
  /^<(\d+)>\w{3} [ \d]\d \d\d:\d\d:\d\d haproxy\[\d+\]: (\d+\.\d+\.\d+\.\d+):(\d+) \[(\d\d\/\w{3}\/\d{4}:\d\d:\d\d:\d\d\.\d{3})\] (\S+) (\S+) (\S+) (\S+) (\S+) (\S+ \S+) (\S{4}) (\S+) (\S+) "(.*)"$/;

function fields(line: string): LogFields {
  const m = HTTPLOG.exec(line);
  assert.ok(m, `httplog layout: ${line}`);
  return {
    frontend: m[5],
    backendServer: m[6],
    timers: m[7].split('/'),
    status: m[8],
    bytes: m[9],
    captures: m[10],
    term: m[11],
    conns: m[12].split('/'),
    queues: m[13].split('/'),
    request: m[14],
  };
}

async function scenario(port: number, x: Extra, sink: SyslogSink): Promise<{ logs: LogFields[]; csv: string; tcp: string }> {
  assert.equal((await get(x.deadPort, '/gone')).status, 503);
  assert.equal((await get(x.hangPort, '/hang')).status, 504);
  assert.equal((await get(x.resetPort, '/reset')).status, 502);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  for (const p of ['/ka1', '/ka2', '/ka3']) assert.equal((await get(x.kaPort, p, { agent })).status, 200);
  agent.destroy();
  assert.equal((await get(x.tcpPort, '/tcp')).status, 200);
  const tcpLine = await sink.waitFor(/ tcpfarm tcpfarm\/t1 /);
  await get(port, '/a?x=1');
  await get(port, '/b', { method: 'POST', body: 'hello' });
  await get(port, '/c');
  const csv = (await get(port, '/haproxy?stats;csv')).body;
  const want = [
    '"GET /gone HTTP/1.1"',
    '"GET /hang HTTP/1.1"',
    '"GET /reset HTTP/1.1"',
    '"GET /ka1 HTTP/1.1"',
    '"GET /ka2 HTTP/1.1"',
    '"GET /ka3 HTTP/1.1"',
    '"GET /a?x=1 HTTP/1.1"',
    '"POST /b HTTP/1.1"',
    '"GET /c HTTP/1.1"',
    '"GET /haproxy?stats;csv HTTP/1.1"',
  ];
  const lines = [];
  for (const w of want) lines.push(await sink.waitFor(new RegExp(w.replace(/[?/.;]/g, '\\$&') + '$')));
  assert.equal(sink.lines.filter((l) => HTTPLOG.test(l)).length, 10, 'one httplog line per HTTP request');
  return { logs: lines.map(fields), csv, tcp: tcpLine };
}

test('httplog fields and CSV columns line up with HAProxy 2.6', async (t) => {
  if (!prerequisites(t, commandUnavailable('haproxy'))) return;
  const b1 = await fakeBackend('web01');
  const b2 = await fakeBackend('web02');
  const sinkH = await syslogSink();
  const sinkO = await syslogSink();
  const portH = await freePort();
  const portO = await freePort();
  const deadH = await freePort();
  const deadO = await freePort();
  const nothing = await freePort(); // refused: the dead server
  const hang = await fakeBackend('hang');
  hang.mode = { kind: 'hang' };
  const reset = await fakeBackend('reset');
  reset.mode = { kind: 'reset' };
  const xH: Extra = {
    deadPort: deadH,
    deadTarget: nothing,
    hangPort: await freePort(),
    hangTarget: hang.port,
    resetPort: await freePort(),
    resetTarget: reset.port,
    kaPort: await freePort(),
    tcpPort: await freePort(),
  };
  const xO: Extra = {
    deadPort: deadO,
    deadTarget: nothing,
    hangPort: await freePort(),
    hangTarget: hang.port,
    resetPort: await freePort(),
    resetTarget: reset.port,
    kaPort: await freePort(),
    tcpPort: await freePort(),
  };
  const dir = tmpDir();
  const cfgH = join(dir, 'haproxy.cfg');
  const sockH = join(dir, 'haproxy.sock');
  const sockO = join(dir, 'ours.sock');
  writeFileSync(cfgH, config(portH, sinkH.port, b1.port, b2.port, sockH, xH));
  const hap = spawn('haproxy', ['-db', '-f', cfgH], { stdio: ['ignore', 'ignore', 'pipe'] });
  let hapErr = '';
  hap.stderr!.on('data', (d) => (hapErr += d));
  const ours = await startProxy(config(portO, sinkO.port, b1.port, b2.port, sockO, xO), portO);
  t.after(async () => {
    hap.kill('SIGTERM');
    await ours.stop();
    await b1.close();
    await b2.close();
    await hang.close();
    await reset.close();
    sinkH.close();
    sinkO.close();
    rmSync(dir, { recursive: true, force: true });
  });
  await until(`haproxy listening (${hapErr})`, () => canConnect(portH));
  // start once both have checked both servers (the socket leaves no trace in the counters)
  for (const sock of [sockH, sockO])
    await until('first checks done', async () => {
      const rows = parseCsv(await statsCommand(sock, 'show stat').catch(() => '# x\n'));
      return rows.filter((r) => r.check_status === 'L4OK').length === 2;
    });

  const h = await scenario(portH, xH, sinkH);
  const o = await scenario(portO, xO, sinkO);

  const logDiffs: string[] = [];
  for (let i = 0; i < h.logs.length; i++) {
    const a = h.logs[i];
    const b = o.logs[i];
    for (const k of ['backendServer', 'status', 'captures', 'term', 'request'] as const)
      if (a[k] !== b[k]) logDiffs.push(`${a.request} ${k}: ours '${b[k]}' haproxy '${a[k]}'`);
    if (a.conns[4] !== b.conns[4]) logDiffs.push(`${a.request} retries: ours '${b.conns[4]}' haproxy '${a.conns[4]}'`);
  }
  assert.deepEqual(logDiffs, []);
  // tcplog: %ci:%cp [%t] %ft %b/%s %Tw/%Tc/%Tt %B %ts %ac/%fc/%bc/%sc/%rc %sq/%bq
  const TCPLOG =
    /^<134>\w{3} [ \d]\d \d\d:\d\d:\d\d haproxy\[\d+\]: \d+\.\d+\.\d+\.\d+:\d+ \[[^\]]+\] (\S+) (\S+) (-?\d+)\/(-?\d+)\/(\d+) (\d+) (\S\S) (\d+)\/(\d+)\/(\d+)\/(\d+)\/(\d+) (\d+)\/(\d+)$/;
  const th = TCPLOG.exec(h.tcp);
  const to = TCPLOG.exec(o.tcp);
  assert.ok(th, `haproxy tcplog: ${h.tcp}`);
  assert.ok(to, `our tcplog: ${o.tcp}`);
  assert.deepEqual(
    [to[1], to[2], to[6], to[7], to[12]],
    [th[1], th[2], th[6], th[7], th[12]],
    'frontend, backend/server, bytes, termination state, retries',
  );
  for (let i = 0; i < h.logs.length; i++) {
    const a = h.logs[i];
    const b = o.logs[i];
    assert.equal(b.frontend, a.frontend);
    assert.equal(b.backendServer, a.backendServer, `request ${i}`);
    assert.equal(b.timers.length, a.timers.length);
    assert.equal(b.status, a.status);
    assert.equal(b.captures, a.captures);
    assert.equal(b.term, a.term, `termination state of request ${i}`);
    assert.equal(b.conns.length, a.conns.length);
    assert.equal(b.conns[4], a.conns[4], `retries of request ${i}`);
    assert.deepEqual(b.queues, a.queues);
    assert.equal(b.request, a.request);
  }

  // CSV: same header, same rows, and the same values where both proxies measure the same thing
  const [hh] = h.csv.split('\n');
  const [oh] = o.csv.split('\n');
  assert.equal(oh, hh, 'CSV header');
  const hr = parseCsv(h.csv);
  const or = parseCsv(o.csv);
  assert.deepEqual(
    or.map((r) => `${r.pxname}/${r.svname}`),
    hr.map((r) => `${r.pxname}/${r.svname}`),
  );
  const same = [
    'pxname',
    'svname',
    'qcur',
    'slim',
    'stot',
    'status',
    'weight',
    'act',
    'bck',
    'iid',
    'sid',
    'type',
    'lbtot',
    'hrsp_2xx',
    'hrsp_5xx',
    'req_tot',
    'check_rise',
    'check_fall',
    'mode',
    'econ',
    'wretr',
    'wredis',
  ];
  const diffs: string[] = [];
  for (let i = 0; i < hr.length; i++)
    for (const k of same) {
      // HAProxy counts a connection closed without a request (our readiness probe) as a request
      if (k === 'req_tot' && hr[i].svname === 'FRONTEND') continue;
      if (or[i][k] !== hr[i][k]) diffs.push(`${hr[i].pxname}/${hr[i].svname} ${k}: ours '${or[i][k]}' haproxy '${hr[i][k]}'`);
    }
  assert.deepEqual(diffs, []);
  // the columns that are empty for a kind of row in HAProxy are empty in ours too (and the other way round) for these
  const shape = [
    'qcur',
    'qmax',
    'scur',
    'smax',
    'slim',
    'stot',
    'bin',
    'bout',
    'dreq',
    'ereq',
    'econ',
    'eresp',
    'status',
    'weight',
    'act',
    'bck',
    'chkfail',
    'chkdown',
    'lbtot',
    'type',
    'rate',
    'rate_max',
    'hrsp_2xx',
    'req_tot',
    'addr',
    'mode',
    'algo',
    'conn_tot',
    'check_rise',
  ];
  const shapeDiffs: string[] = [];
  for (let i = 0; i < hr.length; i++)
    for (const k of shape)
      if ((or[i][k] === '') !== (hr[i][k] === ''))
        shapeDiffs.push(`${hr[i].pxname}/${hr[i].svname} ${k}: ours '${or[i][k]}' haproxy '${hr[i][k]}'`);
  assert.deepEqual(shapeDiffs, []);
});
