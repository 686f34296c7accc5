import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ScriptTracker, combineTracking, commandRunner, type CheckStatus } from '../../../runtime/vrrpd/track.ts';
import type { VrrpScriptConfig } from '../../../runtime/vrrpd/config.ts';
import { FakeClock } from './fakenet.ts';

const script = (over: Partial<VrrpScriptConfig> = {}): VrrpScriptConfig => ({
  name: 'chk',
  argv: ['true'],
  interval: 1,
  timeout: 1,
  weight: 0,
  rise: 2,
  fall: 3,
  initFail: false,
  where: { file: 'x', line: 1 },
  ...over,
});

test('rise and fall: from init one result decides, then rise successes / fall failures change the status', () => {
  const changes: CheckStatus[] = [];
  const t = new ScriptTracker(
    script(),
    async () => true,
    new FakeClock(),
    (tr) => changes.push(tr.status),
  );
  assert.equal(t.status, 'init');
  t.record(true);
  assert.equal(t.status, 'ok');
  t.record(false);
  t.record(false);
  assert.equal(t.status, 'ok', 'two failures < fall 3');
  t.record(true);
  t.record(false);
  t.record(false);
  t.record(false);
  assert.equal(t.status, 'failed');
  t.record(true);
  assert.equal(t.status, 'failed', 'one success < rise 2');
  t.record(true);
  assert.equal(t.status, 'ok');
  assert.deepEqual(changes, ['ok', 'failed', 'ok']);
  const f = new ScriptTracker(
    script({ initFail: true, rise: 2 }),
    async () => true,
    new FakeClock(),
    () => {},
  );
  assert.equal(f.status, 'failed');
  f.record(true);
  assert.equal(f.status, 'failed');
  f.record(true);
  assert.equal(f.status, 'ok');
});

test('the tracker runs the check every interval on its clock', async () => {
  const clock = new FakeClock();
  let runs = 0;
  const results = [true, false, false, false];
  const t = new ScriptTracker(
    script({ fall: 3 }),
    async () => results[runs++ % results.length],
    clock,
    () => {},
  );
  await t.start();
  assert.equal(runs, 1);
  assert.equal(t.status, 'ok');
  for (let i = 0; i < 3; i++) {
    clock.advance(1000);
    await new Promise((r) => setImmediate(r));
  }
  assert.equal(runs, 4);
  assert.equal(t.status, 'failed');
  t.stop();
  clock.advance(5000);
  assert.equal(runs, 4, 'stopped');
});

test('keepalived weight rules for scripts and interfaces', () => {
  const tr = (status: CheckStatus, weight: number) => ({ status, cfg: { name: 'c', weight } });
  const ref = (name: string, weight?: number) => ({ name, weight, where: { file: 'x', line: 1 } });
  assert.deepEqual(
    combineTracking(
      [
        { ref: ref('up'), tracker: tr('ok', 20) },
        { ref: ref('down'), tracker: tr('failed', -30) },
      ],
      [],
    ),
    { delta: -10, faults: [] },
  );
  assert.deepEqual(
    combineTracking(
      [
        { ref: ref('a'), tracker: tr('failed', 20) },
        { ref: ref('b'), tracker: tr('ok', -30) },
      ],
      [],
    ),
    { delta: 0, faults: [] },
  );
  assert.deepEqual(combineTracking([{ ref: ref('proxy'), tracker: tr('failed', 0) }], []), { delta: 0, faults: ['script proxy failed'] });
  // the instance's own weight overrides the script's
  assert.deepEqual(combineTracking([{ ref: ref('o', -50), tracker: tr('failed', 0) }], []), { delta: -50, faults: [] });
  assert.deepEqual(combineTracking([{ ref: ref('i'), tracker: tr('init', -50) }], []), { delta: 0, faults: [] });
  assert.deepEqual(
    combineTracking(
      [],
      [
        { ref: { name: 'eth1', weight: 0 }, up: false },
        { ref: { name: 'eth2', weight: -20 }, up: false },
        { ref: { name: 'eth3', weight: 10 }, up: true },
      ],
    ),
    { delta: -10, faults: ['interface eth1 down'] },
  );
});

test('commandRunner: exit status decides, overruns are killed', async () => {
  const run = commandRunner();
  assert.equal(await run(['true'], 2000), true);
  assert.equal(await run(['false'], 2000), false);
  assert.equal(await run(['/nonexistent/check'], 2000), false);
  const t0 = Date.now();
  assert.equal(await run(['sleep', '5'], 200), false);
  assert.ok(Date.now() - t0 < 4000);
});
