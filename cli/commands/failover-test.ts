import type { Command } from 'commander';
import { UserError } from '../errors.ts';
import { prose } from '../help.ts';
// The engine, the load and the report load only when the command runs (fast --help).

interface Flags {
  rate?: string;
  scenarios: string;
  json?: string;
  report?: string;
  spikeSteps: string;
  stepSeconds: string;
  capacityStart?: string;
  capacityStepSeconds?: string;
  capacityRefine?: string;
  capacityFloods?: string;
  capacityFloodSeconds?: string;
  capacityRecoverySeconds?: string;
  capacitySlo?: string;
  capacitySingleBox?: boolean;
  capacityOneNode?: boolean;
}

const HELP = `
Pre-flight first: the VIP answers, both LBs run their proxy and VRRP daemon, exactly one holds the VIP, every web node is UP in both proxies, the database answers the application's account. Otherwise it stops before any fault, and says what is wrong.

Scenarios (--scenarios; all but partition by default), each under a steady load through the VIP (keep-alive and new connections; over HTTPS when the inventory redirects HTTP there), each from a healthy cluster:
  web     Apache stopped on the first web node, then its packets dropped: failed requests, time until
          both proxies mark it DOWN, each node's share meanwhile, time until it serves again
  lb      the VRRP master killed (SIGKILL, its units held down), its link down, then stopped
          gracefully: VIP takeover (last request through it to the first through the other LB), when
          the VIP and its gratuitous ARPs appeared, failed requests, connections reset, preemption back;
          a kill may cost only the requests in flight on the master (on connections open there)
  partition
          VRRP between the two LBs blocked both ways (both still reach the clients and the web nodes):
          how long both hold the VIP, which LB the clients reach meanwhile, one holder again within 3 s
          of the heal; on request only (--scenarios ...,partition): its heal can still cost requests
  db      a write and a read with the application's account from a web node; with a replica, the row
          on the replica and the lag; the primary's MariaDB stopped: what the application sees
  spike   the rate x1, x2, x4, x8 (--spike-steps): req/s served, p50/p99, errors, the proxy's queue (a short
          look; the capacity scenario is the measurement)
  capacity
          on request (--scenarios ...,capacity; about 4 minutes with the defaults): an open-loop load on
          the site's page through the VIP (latency from when each request was due, in an HDR histogram)
          in steps growing by half until the p99 passes failover_test.slo_ms (500 ms) or a request
          fails (a missed step runs once more, and the repeat decides), then steps in between: the
          capacity (highest rate with p99 under the SLO) and the knee;
          per step served req/s, p50/p99/p99.9, errors by kind (reset, timeout, 502, 503), each LB's
          queue, each web node's CPU, busy PHP-FPM children and Apache workers, the database's
          connections. Then floods at 2x and 4x the capacity (--capacity-floods, 15 s each): resets,
          timeouts, 502s, 503s before the LB's timeout queue, served vs capacity, MariaDB's "Too many
          connections", Apache's MaxRequestWorkers and PHP-FPM's pm.max_children lines in the hosts'
          logs, seconds until the p99 is back under the SLO. The same with one web node (the others
          drained on both LBs: scale ratio) and on the first web node reached directly without the LBs
          (the single box, same ramp and floods)

Every fault is undone at the end, also on an error or Ctrl-C (a second Ctrl-C still waits for the undoing, and says so); each host also undoes its fault by itself within 120 s if the controller is cut off. The pre-flight runs once more at the end.

Verdicts are judged against failover_test.thresholds of the inventory (defaults: 0 failed requests when a web node fails, detection within the health check's bound + 1 s (2.35 s by default), takeover under 1 s after a hard failure and 300 ms after a graceful stop, no error in the spike; capacity floods with 0 resets, timeouts, 502s and 503s before the queue timeout, 0 "Too many connections", at least 80 % of the capacity served, the p99 back under the SLO within twice the queue timeout + 2 s (12 s), 1.8x the capacity of one web node with two). Exit 0 when every one holds and the cluster is healthy afterwards, 1 otherwise, 2 on a usage error, 130 when interrupted.

Examples:
  hasetup failover-test inventory.yaml
  hasetup failover-test inventory.yaml --scenarios web,lb --rate 500 --json result.json --report result.html
  hasetup lab exec -- hasetup failover-test lab/inventory.yaml`;

function plainOutput(): boolean {
  return !process.stdout.isTTY || !!process.env.NO_COLOR || !!process.env.CI;
}

export function registerFailoverTest(program: Command): void {
  program
    .command('failover-test <inventory>')
    .description(
      'Prove that the cluster survives: a steady load through the VIP while a web node, the master LB and the database fail, and a traffic spike; detection and takeover times, every failed request, a table per scenario, JSON and an HTML chart.',
    )
    .option('--rate <n>', 'requests per second of the steady load (default: failover_test.rate of the inventory, 200)')
    .option('--scenarios <list>', 'comma-separated: web, lb, partition, db, spike, capacity', 'web,lb,db,spike')
    .option('--json <file>', 'write every figure as JSON to this file')
    .option('--report <file>', 'write a self-contained HTML page with a timeline chart per scenario')
    .option('--spike-steps <list>', "the spike's multiples of the rate", '1,2,4,8')
    .option('--step-seconds <n>', 'how long each spike step lasts', '5')
    .option('--capacity-start <n>', "the capacity ramp's first rate, req/s (default: failover_test.capacity.start_rate, half of --rate)")
    .option('--capacity-step-seconds <n>', 'how long each capacity step lasts (default: failover_test.capacity.step_seconds, 4)')
    .option('--capacity-refine <n>', 'steps between the last rate under the SLO and the first over it (default 2)')
    .option('--capacity-floods <list>', 'the floods, multiples of the measured capacity (default 2,4)')
    .option('--capacity-flood-seconds <n>', 'how long each flood lasts (default: failover_test.capacity.flood_seconds, 15)')
    .option(
      '--capacity-recovery-seconds <n>',
      'the load at half the capacity after each flood (default: the recovery threshold + 5 s, 17 s)',
    )
    .option('--capacity-slo <ms>', 'the p99 objective the capacity is measured against (default: failover_test.slo_ms, 500)')
    .option('--no-capacity-one-node', 'skip the cluster with one web node')
    .option('--no-capacity-single-box', 'skip the single box (one web node reached directly)')
    .addHelpText('after', prose(HELP))
    .action(async (file: string, flags: Flags) => {
      const groups = flags.scenarios
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
      const [
        { SCENARIO_GROUPS, failoverTest, PreflightError },
        { loadOrExplain, connectHost },
        { secretValues },
        { Redactor },
        text,
        html,
        { writeFileSync },
      ] = await Promise.all([
        import('../failover/run.ts'),
        import('../connect.ts'),
        import('../../inventory/secrets.ts'),
        import('../engine/redact.ts'),
        import('../failover/report-text.ts'),
        import('../failover/report-html.ts'),
        import('node:fs'),
      ]);
      const bad = groups.filter((g) => !(SCENARIO_GROUPS as readonly string[]).includes(g));
      if (bad.length || groups.length === 0)
        throw new UserError(
          `--scenarios: ${bad.length ? `no scenario named ${bad.join(', ')}` : 'none given'} (scenarios: ${SCENARIO_GROUPS.join(', ')})`,
          2,
        );
      const num = (v: string | undefined, what: string, min: number, max: number) => {
        const n = Number(v);
        if (!Number.isFinite(n) || n < min || n > max)
          throw new UserError(`${what}: expected a number from ${min} to ${max}, got "${v}"`, 2);
        return n;
      };
      const factors = flags.spikeSteps.split(',').map((x) => num(x.trim(), '--spike-steps', 0.1, 100));
      const stepSeconds = num(flags.stepSeconds, '--step-seconds', 1, 120);
      const opt = (v: string | undefined, what: string, min: number, max: number) => (v === undefined ? undefined : num(v, what, min, max));
      const capacity = {
        startRate: opt(flags.capacityStart, '--capacity-start', 1, 100000),
        stepSeconds: opt(flags.capacityStepSeconds, '--capacity-step-seconds', 1, 600),
        refineSteps: opt(flags.capacityRefine, '--capacity-refine', 0, 10),
        floodFactors: flags.capacityFloods?.split(',').map((x) => num(x.trim(), '--capacity-floods', 1.1, 100)),
        floodSeconds: opt(flags.capacityFloodSeconds, '--capacity-flood-seconds', 1, 3600),
        recoverySeconds: opt(flags.capacityRecoverySeconds, '--capacity-recovery-seconds', 2, 600),
        sloMs: opt(flags.capacitySlo, '--capacity-slo', 1, 600000),
        oneNode: flags.capacityOneNode === false ? false : undefined,
        singleBox: flags.capacitySingleBox === false ? false : undefined,
      };
      const inv = await loadOrExplain(file);
      const rate = flags.rate === undefined ? inv.failoverTest.rate : num(flags.rate, '--rate', 1, 100000);
      const redactor = new Redactor(secretValues(inv));
      const plain = plainOutput();
      const t0 = Date.now();
      const lines: string[] = [];
      let bar: ((msg: string) => void) | undefined;
      const say = (msg: string) => {
        const line = redactor.redact(msg);
        lines.push(line);
        if (bar) bar(line);
        else process.stderr.write(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${line}\n`);
      };

      // Ctrl-C: stop the scenario, undo every fault; a second one still waits for the undoing
      const ac = new AbortController();
      const onInt = () => {
        if (ac.signal.aborted)
          process.stderr.write('\nhasetup: still undoing the faults, waiting for it (the cluster must not stay broken)\n');
        else {
          process.stderr.write('\nhasetup: interrupted: undoing every fault, then checking the cluster\n');
          ac.abort();
        }
      };
      process.on('SIGINT', onInt);
      let report;
      try {
        const run = () =>
          failoverTest({
            inv,
            connect: (h) => connectHost(inv, h),
            groups: groups as never,
            rate,
            spike: { factors, stepSeconds },
            capacity,
            say,
            signal: ac.signal,
          });
        if (plain) report = await run();
        else {
          const { Listr } = await import('listr2');
          let result: Awaited<ReturnType<typeof run>> | undefined;
          await new Listr(
            [
              {
                title: `failover test of ${inv.cluster} (${inv.runtime}), ${rate} req/s`,
                task: async (_c, task) => {
                  bar = (m) => (task.output = m);
                  result = await run();
                  task.title = `failover test of ${inv.cluster}: ${result.passed ? 'passed' : 'FAILED'}`;
                },
                rendererOptions: { outputBar: 3, persistentOutput: false },
              },
            ],
            { exitOnError: true, rendererOptions: { collapseSubtasks: false } },
          ).run();
          bar = undefined;
          report = result as Awaited<ReturnType<typeof run>>;
        }
      } catch (e) {
        if (e instanceof PreflightError) throw new UserError(redactor.redact(e.message), 1);
        throw e;
      } finally {
        process.off('SIGINT', onInt);
      }
      process.stdout.write(redactor.redact(text.renderText(report, { color: !plain })) + '\n');
      if (flags.json) writeFileSync(flags.json, redactor.redact(JSON.stringify({ ...report, log: lines }, null, 2)) + '\n');
      if (flags.report) writeFileSync(flags.report, redactor.redact(html.renderHtml(report)));
      if (report.interrupted) process.exitCode = 130;
      else if (!report.passed) process.exitCode = 1;
    });
}
