// mode tcp inactivity: `timeout client` cuts a client that goes quiet (cD in the log), `timeout server` a server
// that does not answer (sD), and bytes moving either way keep a connection alive past both.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { freePort, sleep, startProxy, syslogSink, until } from './helpers.ts';

/** A TCP server on loopback: echoes, or reads and never answers. */
async function tcpServer(echo: boolean): Promise<{ port: number; close(): Promise<void> }> {
  const socks = new Set<net.Socket>();
  const srv = net.createServer((s) => {
    socks.add(s);
    s.on('close', () => socks.delete(s));
    s.on('error', () => {});
    s.on('data', (d) => echo && s.write(d));
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return {
    port: (srv.address() as net.AddressInfo).port,
    close: () =>
      new Promise((r) => {
        for (const s of socks) s.destroy();
        srv.close(() => r());
      }),
  };
}

interface Client {
  sock: net.Socket;
  got: () => string;
  closed: () => boolean;
}
async function client(port: number): Promise<Client> {
  const sock = net.connect(port, '127.0.0.1');
  let got = '';
  let closed = false;
  sock.on('data', (d) => (got += d));
  sock.on('close', () => (closed = true));
  sock.on('error', () => {});
  await new Promise((r) => sock.once('connect', r));
  return { sock, got: () => got, closed: () => closed };
}

const config = (port: number, server: number, sink: number, client: string, srv: string) => `global
    nbthread 1
    log 127.0.0.1:${sink} local0
defaults
    mode tcp
    log global
    option tcplog
    timeout connect 1s
    timeout client ${client}
    timeout server ${srv}
listen t
    bind 127.0.0.1:${port}
    server s 127.0.0.1:${server}
`;

test('mode tcp: timeout client cuts a quiet client (cD); traffic keeps a connection open past it', async (t) => {
  const echo = await tcpServer(true);
  const sink = await syslogSink();
  const port = await freePort();
  const px = await startProxy(config(port, echo.port, sink.port, '300ms', '10s'), port);
  const chatty = await client(port);
  const quiet = await client(port);
  t.after(async () => {
    chatty.sock.destroy();
    quiet.sock.destroy();
    await px.stop();
    await echo.close();
    sink.close();
  });
  quiet.sock.write('q');
  await until('the quiet client echoed', () => quiet.got() === 'q');
  // the chatty one sends a byte every 100 ms for 1.2 s, four times its timeout
  for (let i = 0; i < 12; i++) {
    chatty.sock.write(String(i % 10));
    await sleep(100);
  }
  await until('all echoes', () => chatty.got().length === 12);
  assert.equal(chatty.closed(), false, 'a connection with traffic stays open');
  assert.equal(quiet.closed(), true, 'the quiet client was cut');
  const line = await sink.waitFor(/ cD /);
  assert.match(line, /t t\/s /);
});

test('mode tcp: timeout server cuts a server that does not answer (sD)', async (t) => {
  const silent = await tcpServer(false);
  const sink = await syslogSink();
  const port = await freePort();
  const px = await startProxy(config(port, silent.port, sink.port, '10s', '300ms'), port);
  const c = await client(port);
  t.after(async () => {
    c.sock.destroy();
    await px.stop();
    await silent.close();
    sink.close();
  });
  c.sock.write('hello');
  await until('the client cut', () => c.closed(), 5000);
  assert.equal(c.got(), '');
  await sink.waitFor(/ sD /);
});
