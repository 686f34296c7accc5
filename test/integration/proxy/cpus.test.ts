// Where the workers run: by default anywhere (the scheduler places them), as HAProxy 2.6's threads without cpu-map:
// a worker tied to a CPU that something else keeps busy waits while another CPU idles (bench/results/proxy.md,
// open-loop latency in the deployed shape). `cpu-map` lines place them, and a reload applies a changed one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fakeBackend, freePort, get, startProxy, until, workerThreads } from './helpers.ts';

const cpus = availableParallelism();
const all = `0-${cpus - 1}`;

const cfg = (port: number, backend: number, global: string) =>
  `global\n${global}defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\nlisten x\n    bind 127.0.0.1:${port}\n    server s 127.0.0.1:${backend}\n`;

/** The CPUs a thread (the process's main thread by default) may run on, as the kernel lists them ("0", "0-1"...). */
function allowedList(pid: number, tid = pid): string {
  return /Cpus_allowed_list:\s*(\S+)/.exec(readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8'))?.[1] ?? '?';
}

test(
  'workers: free by default, as cpu-map says otherwise, re-placed by a reload',
  { skip: cpus < 2 ? `needs 2 CPUs, this machine has ${cpus}` : false },
  async (t) => {
    const b = await fakeBackend('web');
    const port = await freePort();
    const px = await startProxy(cfg(port, b.port, ''), port);
    t.after(async () => {
      await px.stop();
      await b.close();
    });
    const pid = px.proc.pid!;
    const workers = await until(`${cpus} workers`, () => (workerThreads(pid).length === cpus ? workerThreads(pid) : null));
    const placed = workers.map((w) => allowedList(pid, w));
    assert.deepEqual(
      placed,
      workers.map(() => all),
      `no worker tied to a CPU: ${placed.join(' ')}`,
    );
    assert.equal(allowedList(pid), all, 'the main thread is not restricted');

    const reloaded = async (text: string) => {
      const n = (px.stderr().match(/configuration reloaded/g) ?? []).length;
      px.write(text);
      px.reload();
      await until('reloaded', () => (px.stderr().match(/configuration reloaded/g) ?? []).length > n);
    };
    // cpu-map: worker k on CPU k-1 (reload, same workers), then every CPU again
    await reloaded(cfg(port, b.port, `    cpu-map auto:1/1-${cpus} ${Array.from({ length: cpus }, (_, i) => i).join(' ')}\n`));
    assert.deepEqual(
      workers.map((w) => allowedList(pid, w)),
      Array.from({ length: cpus }, (_, i) => String(i)),
    );
    await reloaded(cfg(port, b.port, `    cpu-map 1/all ${all}\n`));
    assert.deepEqual(workerThreads(pid), workers, 'the same workers');
    for (const w of workers) assert.equal(allowedList(pid, w), all, `worker ${w} free again`);

    // explicit placement: auto: gives thread k the k-th CPU listed (here in reverse order)
    const reversed = Array.from({ length: cpus }, (_, i) => cpus - 1 - i);
    await reloaded(cfg(port, b.port, `    cpu-map auto:1/1-${cpus} ${reversed.join(' ')}\n`));
    assert.deepEqual(workers.map((w) => allowedList(pid, w)).sort(), reversed.map(String).sort());
    assert.equal((await get(port, '/')).status, 200);
    assert.doesNotMatch(px.stderr(), /cannot run on CPU/);
  },
);

test('cpu-map with CPUs this machine does not have: a warning, and the workers keep running', async (t) => {
  const b = await fakeBackend('web');
  const port = await freePort();
  const px = await startProxy(cfg(port, b.port, `    nbthread 2\n    cpu-map 1/all 1000\n`), port);
  t.after(async () => {
    await px.stop();
    await b.close();
  });
  await until('the warning', () => /\[WARNING\].*cpu-map: cannot run on CPU 1000: sched_setaffinity EINVAL/.test(px.stderr()));
  assert.equal((await get(port, '/')).status, 200);
});

test(
  'one process: placed only by a cpu-map line, free again when a reload removes it',
  { skip: cpus < 2 ? `needs 2 CPUs, this machine has ${cpus}` : false },
  async (t) => {
    const b = await fakeBackend('web');
    const port = await freePort();
    const px = await startProxy(cfg(port, b.port, `    nbthread 1\n    cpu-map 1/1 1\n`), port);
    t.after(async () => {
      await px.stop();
      await b.close();
    });
    assert.equal(allowedList(px.proc.pid!), '1');
    const n = (px.stderr().match(/configuration reloaded/g) ?? []).length;
    px.write(cfg(port, b.port, `    nbthread 1\n`));
    px.reload();
    await until('reloaded', () => (px.stderr().match(/configuration reloaded/g) ?? []).length > n);
    assert.equal(allowedList(px.proc.pid!), all);
    assert.equal((await get(port, '/')).status, 200);
  },
);
