// Which hosts hold an address, sampled every 20 ms for a while, all hosts in the same instant: run
// in the root network namespace as `node --import tsx test/helpers/vip-watch.ts ADDRESS MS NAME=PID...`,
// where each PID is a process inside that host's network namespace. Each sample reads the host's
// local routes (/proc/PID/net/fib_trie: an address of the host is a "/32 host LOCAL" entry), so a
// sample where two hosts hold the address means they held it at the same moment. Prints the
// samples where the holders changed, as JSON: [{ t: epoch ms, holders: [NAME...] }, ...].
import { readFileSync } from 'node:fs';

const [address, ms, ...pairs] = process.argv.slice(2);
const hosts = pairs.map((p) => {
  const [name, pid] = p.split('=');
  return { name, file: `/proc/${pid}/net/fib_trie` };
});
const local = new RegExp(`\\|-- ${address.replace(/\./g, '\\.')}\\n\\s+/32 host LOCAL`);
const holds = (file: string) => {
  try {
    return local.test(readFileSync(file, 'utf8'));
  } catch {
    return false;
  }
};
const out: { t: number; holders: string[] }[] = [];
const end = Date.now() + Number(ms);
let holders: string[] = [];
const finish = () => {
  clearInterval(timer);
  out.push({ t: Date.now(), holders });
  process.stdout.write(JSON.stringify(out) + '\n');
};
const timer = setInterval(() => {
  const t = Date.now();
  holders = hosts.filter((h) => holds(h.file)).map((h) => h.name);
  const last = out[out.length - 1];
  if (!last || last.holders.join() !== holders.join()) out.push({ t, holders });
  if (t >= end) finish();
}, 20);
// SIGTERM: done early (the samples so far)
process.on('SIGTERM', finish);
