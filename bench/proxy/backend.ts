// A fast loopback HTTP/1.1 backend for the proxy benchmarks: a fixed 200 answer per request, keep-alive,
// honours "Connection: close". Usage: node --import tsx bench/proxy/backend.ts <port>
import net from 'node:net';

const port = Number(process.argv[2] ?? 18181);
const body = 'hello, world\n';
const ka = Buffer.from(`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
const close = Buffer.from(
  `HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
);

net
  .createServer({ noDelay: true }, (s) => {
    let pending = '';
    s.on('error', () => {});
    s.on('data', (d) => {
      pending += d.toString('latin1');
      let i: number;
      while ((i = pending.indexOf('\r\n\r\n')) >= 0) {
        const head = pending.slice(0, i);
        pending = pending.slice(i + 4);
        if (/\r\nconnection:\s*close/i.test(head)) {
          s.end(close);
          return;
        }
        s.write(ka);
      }
    });
  })
  .listen({ port, host: '127.0.0.1', backlog: 4096 }, () => process.send?.('ready'));
