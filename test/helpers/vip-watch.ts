// Run inside a host's network namespace (`ip netns exec NS node --import tsx test/helpers/vip-watch.ts
// ADDRESS MS`): samples every 20 ms whether an interface of the namespace holds ADDRESS, for MS ms,
// then prints the changes as JSON: [{ t: epoch ms, has: boolean }, ...] (the first sample included).
import { networkInterfaces } from 'node:os';

const [address, ms] = [process.argv[2], Number(process.argv[3])];
const has = () => Object.values(networkInterfaces()).some((list) => list?.some((a) => a.address === address));
const changes: { t: number; has: boolean }[] = [];
const end = Date.now() + ms;
const timer = setInterval(() => {
  const now = has();
  if (changes.length === 0 || changes[changes.length - 1].has !== now) changes.push({ t: Date.now(), has: now });
  if (Date.now() >= end) {
    clearInterval(timer);
    changes.push({ t: Date.now(), has: now });
    process.stdout.write(JSON.stringify(changes) + '\n');
  }
}, 20);
