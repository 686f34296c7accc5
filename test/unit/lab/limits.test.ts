// The lab's host limits as the flags give them: cores and sizes parsed, bad values refused with the
// flag named, the defaults merged per group.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_LIMITS, formatLimits, mergeLimits, parseCpu, parseMemory } from '../../../cli/lab/limits.ts';

test('parseCpu: cores, max, and a clear error', () => {
  assert.equal(parseCpu('0.5', '--web-cpu'), 0.5);
  assert.equal(parseCpu('2', '--db-cpu'), 2);
  assert.equal(parseCpu('max', '--lb-cpu'), null);
  assert.throws(() => parseCpu('half', '--web-cpu'), /--web-cpu must be a number of cores/);
  assert.throws(() => parseCpu('0', '--web-cpu'), /--web-cpu must be between 0.01 and 1024/);
  assert.throws(() => parseCpu('-1', '--web-cpu'), /--web-cpu must be a number/);
});

test('parseMemory: sizes with binary units, max, a floor', () => {
  assert.equal(parseMemory('512M', '--web-memory'), 512 * 1048576);
  assert.equal(parseMemory('512MiB', '--web-memory'), 512 * 1048576);
  assert.equal(parseMemory('1g', '--db-memory'), 1024 * 1048576);
  assert.equal(parseMemory('1.5G', '--db-memory'), 1536 * 1048576);
  assert.equal(parseMemory('268435456', '--lb-memory'), 268435456);
  assert.equal(parseMemory('max', '--lb-memory'), null);
  assert.throws(() => parseMemory('lots', '--web-memory'), /--web-memory must be a size such as 512M/);
  assert.throws(() => parseMemory('32M', '--web-memory'), /--web-memory must be at least 64M/);
});

test('mergeLimits: per group, per field, the defaults untouched', () => {
  const m = mergeLimits(DEFAULT_LIMITS, { web: { cpu: 0.25 }, db: { memory: null } });
  assert.deepEqual(m.web, { cpu: 0.25, memory: DEFAULT_LIMITS.web.memory });
  assert.deepEqual(m.db, { cpu: DEFAULT_LIMITS.db.cpu, memory: null });
  assert.deepEqual(m.lb, DEFAULT_LIMITS.lb);
  assert.equal(DEFAULT_LIMITS.web.cpu, 0.5);
  assert.equal(formatLimits(DEFAULT_LIMITS.web), '0.5 cpu, 512 MiB');
  assert.equal(formatLimits({ cpu: null, memory: 1024 * 1048576 }), 'no cpu limit, 1 GiB');
});
