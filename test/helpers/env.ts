// Gates for tests that need root, network namespaces or the lab. Outside CI such a test skips with
// a printed reason; under CI=true a missing prerequisite fails the test instead of skipping it.
import type { TestContext } from 'node:test';
import { spawnSync } from 'node:child_process';

export const inCI = process.env.CI === 'true' || process.env.CI === '1';

/** The reason root-level network tests cannot run here, or null when they can. */
export function rootUnavailable(): string | null {
  if (process.platform !== 'linux') return 'needs Linux';
  if (process.getuid?.() !== 0) return 'needs root (network namespaces, raw sockets)';
  const r = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  if (r.status !== 0) return 'needs iproute2 (`ip netns`)';
  return null;
}

/** A command the test needs on PATH, or the reason it is missing. */
export function commandUnavailable(...cmds: string[]): string | null {
  for (const c of cmds) {
    const r = spawnSync('sh', ['-c', `command -v ${c}`], { encoding: 'utf8' });
    if (r.status !== 0) return `needs the command ${c}`;
  }
  return null;
}

/**
 * Returns true when the test may go on. Otherwise skips it with the reason (outside CI) or
 * throws (under CI, where every prerequisite is installed by .ci/run and a skip would hide a gap).
 */
export function prerequisites(t: TestContext, ...reasons: (string | null)[]): boolean {
  const reason = reasons.find((r) => r !== null);
  if (!reason) return true;
  if (inCI) throw new Error(`prerequisite missing under CI: ${reason}`);
  console.log(`# skipped ${t.name}: ${reason}`);
  t.skip(reason);
  return false;
}
