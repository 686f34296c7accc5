// What the capacity scenario reads from the hosts while its load runs, twice a second, one watcher
// per host over its SSH connection: each LB's queue for the web backend (requests waiting, and the
// average time the last ones waited: `show stat` on the runtime API, either runtime); each web node's
// CPU (its cgroup's usage: what a VPS of that size has), the PHP-FPM children busy with a request
// (connections accepted on the pool's socket), the requests waiting for one (the socket's accept
// queue) and Apache's busy workers; the database's connections. And the logs' telling lines over a
// window: MariaDB's refused connections ("Too many connections"), Apache's "MaxRequestWorkers",
// PHP-FPM's "reached pm.max_children".
import type { Cluster } from '../cluster.ts';
import { showStat } from './probes.ts';
import type { HostFigures } from './types.ts';
import { FPM_POOL, FPM_SOCKET, FPM_UNIT } from '../../roles/index.ts';
import { shq } from '../engine/shell.ts';

const PERIOD_S = 0.5;

const lbScript =
  `while :; do ${showStat} | awk -F, 'NR==1{for(i=1;i<=NF;i++)c[$i]=i; next} ` +
  `$1=="web" && $2=="BACKEND"{bq=$c["qcur"]; qt=$c["qtime"]} $1=="web" && $2!="BACKEND" && $2!="FRONTEND"{sq+=$c["qcur"]; sc+=$c["scur"]} ` +
  `END{printf "L %d %d %d %d\\n", bq, sq, qt, sc}'; sleep ${PERIOD_S}; done`;

// On a web node the watcher must cost next to nothing: it shares the node's CPU quota with the site it
// measures. It ran at about 0.13 cpu when it forked ss twice, curl, sed, awk and date every half second,
// half of a lab web node of a quarter of a core. So bash with builtins only: the clock from /proc/uptime,
// the cgroup's CPU time from its file, the pool's connections from /proc/net/unix (the socket's connected
// ends: one per child serving a request, and one per request not yet accepted, so those beyond
// pm.max_children, read once from the pool file, are the ones waiting), and Apache's busy workers from its
// status page over bash's /dev/tcp every fourth sample (2 s). Measured on a lab web node (its cgroup's
// cpuacct over 10 s): 16 ms of CPU a second, 9 of them without Apache's status page; 130 before.
const webProbe = `S=${FPM_SOCKET}; C=0
while read -r k _ v; do [ "$k" = pm.max_children ] && C=$v; done < ${FPM_POOL} 2>/dev/null
if [ -r /sys/fs/cgroup/cpu.stat ] && read -r k v < /sys/fs/cgroup/cpu.stat && [ "$k" = usage_usec ]; then CG=2
elif [ -r /sys/fs/cgroup/cpuacct/cpuacct.usage ]; then CG=1; else CG=0; fi
exec 9<> <(:)
i=0; a=-1
while :; do
  read -r up _ < /proc/uptime
  case $CG in 2) read -r _ u < /sys/fs/cgroup/cpu.stat ;; 1) read -r u < /sys/fs/cgroup/cpuacct/cpuacct.usage; u=$((u / 1000)) ;; *) u=-1 ;; esac
  n=0; while read -r _ _ _ _ _ st _ p; do [ "$st" = 03 ] && [ "$p" = "$S" ] && n=$((n + 1)); done < /proc/net/unix
  if [ "$C" -gt 0 ] && [ "$n" -gt "$C" ]; then busy=$C; q=$((n - C)); else busy=$n; q=0; fi
  if [ $((i++ % 4)) = 0 ]; then
    a=-1
    if exec 8<>/dev/tcp/127.0.0.1/80; then
      printf 'GET /server-status?auto HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&8
      while IFS= read -r -t 0.4 l <&8; do case $l in BusyWorkers:*) a=\${l#BusyWorkers: }; a=\${a%$'\\r'} ;; esac; done
      exec 8<&-
    fi 2>/dev/null
  fi
  echo "W \${up%.*}\${up#*.}0000000 $u $busy $q $a"
  read -r -t ${PERIOD_S} -u 9 _
done`;

const webScript = `exec bash -c ${shq(webProbe)}`;

const dbScript = `while :; do echo "D $(mariadb -N -B -e "SHOW GLOBAL STATUS LIKE 'Threads_connected'" 2>/dev/null | awk '{print $2}')"; sleep ${PERIOD_S}; done`;

interface LbSample {
  t: number;
  queued: number;
  qtimeMs: number;
  sessions: number;
}
interface WebSample {
  t: number;
  /** The host's own clock (ns) and its cgroup's CPU time (µs). */
  clockNs: number;
  usageUs: number;
  busy: number;
  listenQueue: number;
  apacheBusy: number | null;
}

export class HostSampler {
  private readonly lb = new Map<string, LbSample[]>();
  private readonly web = new Map<string, WebSample[]>();
  private readonly db: { t: number; n: number }[] = [];
  private readonly ac = new AbortController();
  private readonly running: Promise<void>[] = [];

  constructor(
    private readonly c: Cluster,
    lbs: string[],
    webs: string[],
    db: string | undefined,
    seconds: number,
  ) {
    for (const h of lbs) {
      this.lb.set(h, []);
      this.running.push(
        c.watch(
          h,
          lbScript,
          seconds,
          (l) => {
            const m = /^L (\d+) (\d+) (\d+) (\d+)/.exec(l.text);
            if (m) this.lb.get(h)!.push({ t: l.t, queued: Math.max(+m[1], +m[2]), qtimeMs: +m[3], sessions: +m[4] });
          },
          this.ac.signal,
        ),
      );
    }
    for (const h of webs) {
      this.web.set(h, []);
      this.running.push(
        c.watch(
          h,
          webScript,
          seconds,
          (l) => {
            const m = /^W (\d+) (-?\d+) (\d+) (\d+) (-?\d+)/.exec(l.text);
            if (m)
              this.web.get(h)!.push({
                t: l.t,
                clockNs: Number(m[1]),
                usageUs: Number(m[2]),
                busy: +m[3],
                listenQueue: +m[4],
                apacheBusy: +m[5] < 0 ? null : +m[5],
              });
          },
          this.ac.signal,
        ),
      );
    }
    if (db)
      this.running.push(
        c.watch(
          db,
          dbScript,
          seconds,
          (l) => {
            const m = /^D (\d+)/.exec(l.text);
            if (m) this.db.push({ t: l.t, n: +m[1] });
          },
          this.ac.signal,
        ),
      );
  }

  async stop(): Promise<void> {
    this.ac.abort();
    await Promise.all(this.running);
  }

  /** The figures of [from, to] (a sample taken up to one period after `to` still counts: it saw the window's end). */
  figures(from: number, to: number): HostFigures {
    const inW = <T extends { t: number }>(xs: T[]) => xs.filter((x) => x.t >= from && x.t <= to + PERIOD_S * 1000 + 200);
    const lbs: HostFigures['lbs'] = {};
    for (const [h, xs] of this.lb) {
      const w = inW(xs);
      lbs[h] = { maxQueue: Math.max(0, ...w.map((x) => x.queued)), maxQueueMs: Math.max(0, ...w.map((x) => x.qtimeMs)) };
    }
    const webs: HostFigures['webs'] = {};
    for (const [h, xs] of this.web) {
      const w = inW(xs);
      const first = w[0];
      const last = w[w.length - 1];
      const cpu =
        first && last && last !== first && first.usageUs >= 0 && last.clockNs > first.clockNs
          ? Math.round(((last.usageUs - first.usageUs) * 1000 * 100) / (last.clockNs - first.clockNs)) / 100
          : null;
      const ab = w.map((x) => x.apacheBusy).filter((x): x is number => x !== null);
      webs[h] = {
        cpu,
        fpmBusy: Math.max(0, ...w.map((x) => x.busy)),
        fpmQueue: Math.max(0, ...w.map((x) => x.listenQueue)),
        apacheBusy: ab.length ? Math.max(...ab) : null,
      };
    }
    const d = inW(this.db);
    return { lbs, webs, dbConnections: d.length ? Math.max(...d.map((x) => x.n)) : null };
  }
}

// ---------------------------------------------------------------------------------------------
// the logs over a window: where each log ended at its start, what was added to it by its end

const WEB_LOGS = {
  apache: { file: '/var/log/apache2/error.log', pattern: 'MaxRequestWorkers' },
  fpm: { file: `/var/log/${FPM_UNIT}.log`, pattern: 'reached pm.max_children' },
  php: { file: `/var/log/${FPM_UNIT}-hasetup.error.log`, pattern: 'Too many connections' },
} as const;

const maxConnErrors = `mariadb -N -B -e "SHOW GLOBAL STATUS LIKE 'Connection_errors_max_connections'" 2>/dev/null | awk '{print $2}'`;

export interface LogMark {
  webs: Record<string, Record<keyof typeof WEB_LOGS, number>>;
  dbRefused: number | null;
}

export interface LogCounts {
  /** Connections MariaDB refused for max_connections (its counter), or the application's log lines saying so, whichever is more. */
  tooManyConnections: number | null;
  /** Apache's error log lines about MaxRequestWorkers, on every web node. */
  maxRequestWorkers: number;
  /** PHP-FPM's log lines "reached pm.max_children", on every web node. */
  maxChildren: number;
}

const sizes = Object.values(WEB_LOGS)
  .map((l) => `stat -c %s ${l.file} 2>/dev/null || echo 0`)
  .join('; ');

export async function markLogs(c: Cluster, webs: string[], db: string | undefined): Promise<LogMark> {
  const out: LogMark = { webs: {}, dbRefused: null };
  await Promise.all([
    ...webs.map(async (h) => {
      const n = (await c.sh(h, sizes)).trim().split('\n').map(Number);
      out.webs[h] = { apache: n[0] || 0, fpm: n[1] || 0, php: n[2] || 0 };
    }),
    db
      ? c.sh(db, maxConnErrors).then(
          (s) => void (out.dbRefused = s.trim() === '' ? null : Number(s.trim())),
          () => undefined,
        )
      : Promise.resolve(),
  ]);
  return out;
}

/** What the logs gained since `mark`. */
export async function countLogs(c: Cluster, mark: LogMark, db: string | undefined): Promise<LogCounts> {
  const counts: LogCounts = { tooManyConnections: null, maxRequestWorkers: 0, maxChildren: 0 };
  let phpLines = 0;
  await Promise.all([
    ...Object.entries(mark.webs).map(async ([h, m]) => {
      const script = (Object.keys(WEB_LOGS) as (keyof typeof WEB_LOGS)[])
        .map((k) => {
          const { file, pattern } = WEB_LOGS[k];
          // a log rotated meanwhile (smaller than at the mark) is read whole
          return `f=${file}; s=$(stat -c %s $f 2>/dev/null || echo 0); o=${m[k]}; [ "$s" -lt "$o" ] && o=0; tail -c +$((o + 1)) $f 2>/dev/null | grep -c -F '${pattern}' || true`;
        })
        .join('; ');
      const n = (await c.sh(h, script)).trim().split('\n').map(Number);
      counts.maxRequestWorkers += n[0] || 0;
      counts.maxChildren += n[1] || 0;
      phpLines += n[2] || 0;
    }),
    db && mark.dbRefused !== null
      ? c.sh(db, maxConnErrors).then(
          (s) => void (counts.tooManyConnections = Math.max(0, Number(s.trim()) - (mark.dbRefused ?? 0))),
          () => undefined,
        )
      : Promise.resolve(),
  ]);
  counts.tooManyConnections = Math.max(counts.tooManyConnections ?? 0, phpLines);
  return counts;
}

/** The primary database host (the one the application writes to). */
export function primaryDb(c: Cluster): string | undefined {
  const dbs = c.hosts('db');
  return (dbs.find((d) => d.primary) ?? dbs[0])?.name;
}
