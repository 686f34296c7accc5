// How the proxy runs fast: its counters stay fast V8 objects, and its Node flags are the same however it is started.
// The proxy's counters are updated several times per request: they must stay plain fast objects in V8. An object
// that gets its properties one computed key at a time past a dozen or so falls into dictionary mode, where each update
// is a hash lookup and each fractional value allocates (this was the case until the counters were built in one go).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';

const engine = fileURLToPath(new URL('../../../runtime/proxy/counters.ts', import.meta.url));

test('counters: fast properties when new and after the updates a request makes', () => {
  const script = `
    const { newCounters, COUNTER_KEYS } = await import(${JSON.stringify(engine)});
    const c = newCounters();
    const fresh = %HasFastProperties(c);
    c.req_tot++; c.bin += 1234; c.lastsess = Date.now(); c.qtime = c.qtime + 0.5; c.ttime = 3.25;
    console.log(JSON.stringify({ fresh, updated: %HasFastProperties(c), keys: Object.keys(c).length, expected: COUNTER_KEYS.length, lastsess: newCounters().lastsess }));
  `;
  const r = spawnSync(process.execPath, ['--allow-natives-syntax', '--import', 'tsx', '--input-type=module', '-e', script], {
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim()) as { fresh: boolean; updated: boolean; keys: number; expected: number; lastsess: number };
  assert.deepEqual(out, { fresh: true, updated: true, keys: out.expected, expected: out.expected, lastsess: -1 });
});

test("the Node flags of the proxy: the bin wrapper's #! line names the ones the build puts in the bundle's", async () => {
  const { nodeFlags } = (await import(new URL('../../../runtime/proxy/build.mjs', import.meta.url).href)) as { nodeFlags: string[] };
  assert.ok(nodeFlags.length > 0);
  const wrapper = readFileSync(fileURLToPath(new URL('../../../bin/hasetup-proxy.cjs', import.meta.url)), 'utf8').split('\n')[0];
  assert.equal(wrapper, `#!/usr/bin/env -S node ${nodeFlags.join(' ')}`);
});
