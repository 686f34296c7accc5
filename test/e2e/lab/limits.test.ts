// The lab's hosts are small VPSes: each group's CPU quota and memory limit are on the host's cgroup,
// a process inside the host reads them from its own cgroup files (cgroup v2: /sys/fs/cgroup/cpu.max
// and memory.max; v1: cpu/cpu.cfs_quota_us over cpu.cfs_period_us, memory/memory.limit_in_bytes), and
// the kernel enforces them: a busy loop gets no more than its quota, an allocation past the memory
// limit is killed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { prerequisites } from '../../helpers/env.ts';
import { ensureLab, labUnavailable } from '../../helpers/lab.ts';
import { readState } from '../../../cli/lab/state.ts';
import { stateLimits } from '../../../cli/lab/lab.ts';

/** Prints, from inside a host, its CPU quota in cores (or max) and its memory limit in bytes (or max). */
const READ_LIMITS = `if [ -f /sys/fs/cgroup/cpu.max ]; then
  read q p < /sys/fs/cgroup/cpu.max; m=$(cat /sys/fs/cgroup/memory.max)
  echo v2 $q $p $m
else
  q=$(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us); p=$(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us); m=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes)
  echo v1 $q $p $m
fi`;

/** The kernel's count of throttled periods and of OOM kills, as the host sees them. */
const COUNTERS = `if [ -f /sys/fs/cgroup/cpu.stat ]; then
  echo $(sed -n 's/^nr_throttled //p' /sys/fs/cgroup/cpu.stat) $(sed -n 's/^oom_kill //p' /sys/fs/cgroup/memory.events)
else
  echo $(sed -n 's/^nr_throttled //p' /sys/fs/cgroup/cpu/cpu.stat) $(sed -n 's/^oom_kill //p' /sys/fs/cgroup/memory/memory.oom_control)
fi`;

/** The host's own CPU time in µs, as the capacity scenario reads it (its cgroup's, not the machine's). */
const CPU_USAGE = `if [ -f /sys/fs/cgroup/cpu.stat ]; then sed -n 's/^usage_usec //p' /sys/fs/cgroup/cpu.stat;
else echo $(( $(cat /sys/fs/cgroup/cpuacct/cpuacct.usage) / 1000 )); fi`;

function parseLimits(out: string): { cpu: number | null; memory: number | null } {
  const [layout, q, p, m] = out.trim().split(/\s+/);
  const noCpu = layout === 'v2' ? q === 'max' : Number(q) < 0;
  const noMem = layout === 'v2' ? m === 'max' : BigInt(m) >= 2n ** 62n;
  return { cpu: noCpu ? null : Number(q) / Number(p), memory: noMem ? null : Number(m) };
}

test('lab hosts: CPU and memory limits per group, seen from inside, enforced', { timeout: 10 * 60_000 }, async (t) => {
  if (!prerequisites(t, labUnavailable())) return;
  const lab = await ensureLab();
  t.after(() => lab.release());
  const state = readState(lab.config);
  assert.ok(state?.limits, 'the lab records its limits');
  const limits = stateLimits(state);

  for (const host of ['lb01', 'web01', 'db01']) {
    const group = lab.hosts.find((h) => h.name === host)!.group;
    const r = await lab.ssh(host, READ_LIMITS);
    assert.equal(r.code, 0, r.stderr);
    console.log(`# ${host} reads: ${r.stdout.trim()}`);
    assert.deepEqual(parseLimits(r.stdout), limits[group], `${host} sees the ${group} limits`);
  }

  const web = limits.web;
  assert.ok(web.cpu !== null && web.memory !== null, 'the web nodes are limited');
  const [throttled0, oom0] = (await lab.ssh('web01', COUNTERS)).stdout.trim().split(/\s+/).map(Number);

  // two busy loops for 3 s: their CPU time stays within the quota (plus a period's slack)
  const usage0 = Number((await lab.ssh('web01', CPU_USAGE)).stdout.trim());
  const busy = await lab.ssh('web01', `for i in 1 2; do timeout 3 sh -c 'while :; do :; done' & done; wait; times`);
  assert.equal(busy.code, 0, busy.stderr);
  const [user, sys] = [
    ...busy.stdout
      .trim()
      .split('\n')
      .pop()!
      .matchAll(/(\d+)m([\d.]+)s/g),
  ].map((m) => Number(m[1]) * 60 + Number(m[2]));
  console.log(`# web01: two busy loops for 3 s got ${(user + sys).toFixed(2)} s of CPU (quota ${web.cpu} cpu)`);
  assert.ok(user + sys <= web.cpu * 3 * 1.2 + 0.2, `CPU time ${user + sys} s within ${web.cpu} cpu over 3 s`);
  // the host's own CPU counter saw the loops, and not the rest of the machine
  const usedS = (Number((await lab.ssh('web01', CPU_USAGE)).stdout.trim()) - usage0) / 1e6;
  console.log(`# web01's own CPU counter: ${usedS.toFixed(2)} s over the loops`);
  assert.ok(
    usedS >= (user + sys) * 0.9 && usedS <= web.cpu * 3 * 1.2 + 0.5,
    `web01's CPU counter: ${usedS} s for ${user + sys} s of loops`,
  );

  // an allocation 64 MiB past the memory limit is killed by the kernel, inside the host only
  const mib = Math.ceil(web.memory / 1048576) + 64;
  const alloc = await lab.ssh('web01', `perl -e '$x = "a" x (${mib} * 1048576); print "allocated\\n"'; echo "exit $?"`);
  assert.doesNotMatch(alloc.stdout, /allocated/, `an allocation of ${mib} MiB does not survive`);
  assert.match(alloc.stdout, /exit 137/, 'killed (SIGKILL, the OOM killer)');
  const [throttled1, oom1] = (await lab.ssh('web01', COUNTERS)).stdout.trim().split(/\s+/).map(Number);
  // on a machine busy enough that the loops got less than the quota, the kernel had nothing to throttle
  if (user + sys >= web.cpu * 3 * 0.9)
    assert.ok(throttled1 > throttled0, `the kernel throttled web01 (nr_throttled ${throttled0} → ${throttled1})`);
  else console.log(`# the machine gave the loops less than the quota: no throttling to see (nr_throttled ${throttled0} → ${throttled1})`);
  assert.ok(oom1 > oom0, `the kernel counted the OOM kill in web01 (oom_kill ${oom0} → ${oom1})`);
  const alive = await lab.ssh('web01', 'systemctl is-system-running --wait; hostname');
  assert.match(alive.stdout, /web01/, 'web01 itself lives on');
});
