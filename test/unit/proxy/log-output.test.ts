// Log lines to stdout/stderr (the role logs to the journal through stdout): written by the thread that logs them,
// never through the main thread; one write for the lines of one turn of the event loop, in whole lines of at most
// 4 KB (atomic on a pipe, so workers sharing the descriptor never mix their lines); a reader that is behind loses
// nothing up to 1 MB and never makes the proxy wait.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { buildSync } from 'esbuild';
import { FdLog } from '../../../runtime/proxy/log.ts';

const turn = () => new Promise((r) => setImmediate(r));
const eagain = () => Object.assign(new Error('EAGAIN: resource temporarily unavailable, write'), { code: 'EAGAIN' });

test('the lines of one turn go out in one write, after the turn', async () => {
  const writes: string[] = [];
  const log = new FdLog(1, (_fd, b) => (writes.push(b.toString()), b.length));
  log.push('one');
  log.push('two');
  assert.deepEqual(writes, [], 'nothing written while the turn runs');
  await turn();
  assert.deepEqual(writes, ['one\ntwo\n']);
  log.push('three');
  await turn();
  assert.deepEqual(writes, ['one\ntwo\n', 'three\n']);
});

test('writes of whole lines, at most 4 KB each', async () => {
  const writes: Buffer[] = [];
  const log = new FdLog(1, (_fd, b) => (writes.push(Buffer.from(b)), b.length));
  const lines = Array.from({ length: 200 }, (_, i) => `${i} ${'x'.repeat(50 + (i % 37))}`);
  for (const l of lines) log.push(l);
  await turn();
  assert.ok(writes.length > 1);
  for (const w of writes) {
    assert.ok(w.length <= 4096, `a write of ${w.length} bytes`);
    assert.equal(w[w.length - 1], 10, 'ends with a whole line');
  }
  assert.equal(Buffer.concat(writes).toString(), lines.join('\n') + '\n');
});

test('a reader that is behind: nothing lost, order kept, retried later; past 1 MB lines are dropped', async () => {
  const got: string[] = [];
  let mode: 'eagain' | 'partial' | 'ok' = 'eagain';
  const log = new FdLog(1, (_fd, b) => {
    if (mode === 'eagain') throw eagain();
    if (mode === 'partial') {
      mode = 'eagain';
      got.push(b.subarray(0, 5).toString());
      return 5;
    }
    got.push(b.toString());
    return b.length;
  });
  log.push('first line');
  await turn();
  assert.deepEqual(got, []);
  mode = 'partial';
  log.push('second line');
  await new Promise((r) => setTimeout(r, 30));
  assert.deepEqual(got, ['first'], 'five bytes taken, then EAGAIN');
  mode = 'ok';
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(got.join(''), 'first line\nsecond line\n');

  // stuck for a while: what is kept stays under 1 MB, and is written once the reader takes it again
  let stuck = true;
  const written: number[] = [];
  const log2 = new FdLog(1, (_fd, b) => {
    if (stuck) throw eagain();
    written.push(b.length);
    return b.length;
  });
  const line = 'y'.repeat(999);
  for (let i = 0; i < 3000; i++) log2.push(line);
  await turn();
  stuck = false;
  await new Promise((r) => setTimeout(r, 30));
  const total = written.reduce((a, x) => a + x, 0);
  assert.equal(total, Math.floor(FdLog.LIMIT / 1000) * 1000, `${total} bytes written`);
});

test("a worker thread's log lines reach stdout without the main thread", async () => {
  // the child's main thread is blocked (Atomics.wait) until its worker has logged a line and waited a turn; it then
  // writes "main thread free" itself. Through process.stdout the worker's line would wait for the main thread.
  const dir = mkdtempSync(join(tmpdir(), 'hasetup-logtest-'));
  try {
    // bundled into one CommonJS file with its worker in it, as the proxy is (runtime/proxy/build.mjs)
    const logModule = resolve('runtime/proxy/log.ts');
    const entry = join(dir, 'child.ts');
    const script = join(dir, 'child.cjs');
    writeFileSync(
      entry,
      `import { Worker, isMainThread, workerData } from 'node:worker_threads';
import { writeSync } from 'node:fs';
import { Logger } from ${JSON.stringify(logModule)};
if (isMainThread) {
  const sab = new SharedArrayBuffer(4);
  const flag = new Int32Array(sab);
  new Worker(__filename, { workerData: sab });
  Atomics.wait(flag, 0, 0, 10000);
  writeSync(1, 'main thread free\\n');
  setTimeout(() => process.exit(0), 200);
} else {
  const flag = new Int32Array(workerData);
  new Logger('haproxy').send([{ kind: 'stdout', host: '', port: 0, facility: 16, maxLevel: 7, format: 'raw' }], 6, 'a request line');
  setImmediate(() => setImmediate(() => { Atomics.store(flag, 0, 1); Atomics.notify(flag, 0); }));
}
`,
    );
    buildSync({ entryPoints: [entry], outfile: script, bundle: true, platform: 'node', format: 'cjs', logLevel: 'error' });
    const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise((r) => child.on('exit', r));
    assert.equal(code, 0);
    assert.equal(out, 'a request line\nmain thread free\n');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
