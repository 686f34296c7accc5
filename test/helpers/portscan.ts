// TCP connect scan, run inside the lab's controller namespace (`hasetup lab exec -- node --import
// tsx test/helpers/portscan.ts HOST PORTS...`): prints the open ports as JSON. Bounded: each port
// is tried once with a short timeout, at most 128 at a time.
import { connect } from 'node:net';

function parsePorts(args: string[]): number[] {
  const out: number[] = [];
  for (const a of args) {
    const m = /^(\d+)-(\d+)$/.exec(a);
    if (m) for (let p = Number(m[1]); p <= Number(m[2]); p++) out.push(p);
    else out.push(Number(a));
  }
  return out;
}

function probe(host: string, port: number, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(ms, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

const [host, ...rest] = process.argv.slice(2);
const ports = parsePorts(rest);
const open: number[] = [];
let next = 0;
await Promise.all(
  Array.from({ length: 128 }, async () => {
    while (next < ports.length) {
      const p = ports[next++];
      if (await probe(host, p, 700)) open.push(p);
    }
  }),
);
process.stdout.write(JSON.stringify(open.sort((a, b) => a - b)) + '\n');
