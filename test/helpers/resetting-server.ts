// A server, in a process of its own, that resets its connections when told to: for the loads' handling
// of a request given an idle keep-alive connection whose reset has arrived but not been read (undici
// then fails the request before writing any of it). This process's event loop is blocked on purpose
// while the reset arrives, so that the next request is given that connection in the same turn as the
// reset is read.
import { spawn } from 'node:child_process';

const SERVER = `
const open = new Set();
const s = require('node:http').createServer((req, res) => {
  open.add(req.socket);
  res.end('ok');
});
process.stdin.on('data', () => { for (const c of open) c.resetAndDestroy(); open.clear(); });
s.listen(0, '127.0.0.1', () => console.log(s.address().port));
`;

export interface ResettingServer {
  url: string;
  /** Tells the server to reset every connection, then blocks this process for 300 ms (the reset arrives meanwhile). */
  resetWhileBusy(): void;
  close(): void;
}

export async function resettingServer(): Promise<ResettingServer> {
  const child = spawn(process.execPath, ['-e', SERVER], { stdio: ['pipe', 'pipe', 'inherit'] });
  const port = await new Promise<string>((r) => child.stdout.once('data', (d: Buffer) => r(d.toString().trim())));
  return {
    url: `http://127.0.0.1:${port}/`,
    resetWhileBusy() {
      child.stdin.write('reset\n');
      const until = performance.now() + 300;
      while (performance.now() < until);
    },
    close: () => void child.kill(),
  };
}
