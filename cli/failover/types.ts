// What `hasetup failover-test` measures and reports: the model behind the terminal tables, the JSON
// file (--json) and the HTML page (--report). Times are in ms; `t` values are ms since the test began.

export interface Percentiles {
  p50: number;
  p99: number;
  /** Requests these figures were computed from. */
  count: number;
}

/** One second of the load, as the chart draws it. */
export interface SecondBucket {
  /** Start of the second, ms since the test began. */
  t: number;
  /** Requests answered (2xx-4xx) in this second, by the web node that served them. */
  byNode: Record<string, number>;
  /** Requests that failed (no answer, or a 5xx) that were sent in this second. */
  errors: number;
  /** Latency of the requests sent in this second. */
  p50: number;
  p99: number;
  /** The LB that held the VIP at the end of this second, when known. */
  vipHolder?: string;
}

/** A moment worth a marker on the timeline: a fault injected, seen, healed... */
export interface TimelineEvent {
  t: number;
  kind: 'fault' | 'detected' | 'takeover' | 'healed' | 'restored' | 'step' | 'note';
  what: string;
}

export interface FailedRequest {
  t: number;
  ms: number;
  kind: 'keepalive' | 'new';
  status: number;
  error?: string;
  /** The LB it went through, when known. */
  lb?: string;
  /** The TCP connection it was written on, and when that was established (absent: it never had one). */
  conn?: number;
  connectedAt?: number;
  /** When that connection's handshake began (ms on the test's clock). */
  dialedAt?: number;
  /** Sent a second time: the first try was never written (the connection it was given had been reset). */
  resent?: boolean;
}

/** One rate step of the spike scenario. */
export interface SpikeStep {
  /** Requests per second asked for. */
  rate: number;
  /** Requests per second answered. */
  served: number;
  p50: number;
  p99: number;
  errors: number;
  /** The longest queue the master proxy reported for the web backend during the step. */
  maxQueue: number;
  /** The most sessions the master proxy had on one web node during the step. */
  maxSessions: number;
}

export interface Threshold {
  /** What is compared: "failedRequests", "detectionMs", "takeoverMs"... */
  figure: string;
  /** The limit (the figure must be at most this; with `atLeast`, at least this). */
  max: number;
  /** The limit is a floor (a throughput, a ratio), not a ceiling. */
  atLeast?: boolean;
  actual: number | null;
  passed: boolean;
}

export interface ScenarioReport {
  /** Stable id: web-stop, web-drop, lb-kill, lb-link, lb-stop, db, db-primary-down, spike. */
  name: string;
  title: string;
  /** When the scenario's load started and ended (ms since the test began). */
  from: number;
  to: number;
  totalRequests: number;
  failedRequests: number;
  /** Fault to "both proxies see it": web scenarios (DOWN in both proxies). */
  detectionMs?: number;
  /** Fault to traffic served again elsewhere: lb scenarios (last success via the old master to first via the new). */
  takeoverMs?: number;
  /** Heal to back as before (the node UP and serving again, the VIP back on its master). */
  restoredMs?: number;
  /** Connections reset (ECONNRESET) among the failed requests. */
  connectionsReset?: number;
  latency: { before: Percentiles; during: Percentiles; after: Percentiles };
  /** Share of the answered requests each web node served during the fault. */
  shareDuringFault?: Record<string, number>;
  thresholds: Threshold[];
  passed: boolean;
  /** One sentence: what happened, in the user's terms. */
  verdict: string;
  events: TimelineEvent[];
  series: SecondBucket[];
  /** Every failed request (the JSON has them all; the tables count them). */
  failures: FailedRequest[];
  /** Scenario-specific figures (db: replication lag; lb: when the VIP appeared on the new master...). */
  figures?: Record<string, number | string | boolean | null>;
  steps?: SpikeStep[];
  /** The capacity scenario's ramps and floods. */
  capacity?: CapacityReport;
  /** Set when the scenario could not run (e.g. no replica): it then counts as passed. */
  skipped?: string;
}

export interface FailoverReport {
  cluster: string;
  engine: 'bundled' | 'haproxy';
  inventory: string;
  startedAt: string;
  finishedAt: string;
  /** The steady load, requests per second. */
  rate: number;
  scenarios: ScenarioReport[];
  /** The pre-flight once more, after every fault was undone. */
  healthyAfter: boolean;
  /** Every threshold of every scenario held, and the cluster was healthy afterwards. */
  passed: boolean;
  /** Set when the test was interrupted (SIGINT): the scenarios done so far are reported. */
  interrupted?: boolean;
}

/** Requests that failed, by kind: no answer (reset, timeout, other) or a 5xx. */
export interface ErrorCounts {
  reset: number;
  timeout: number;
  '502': number;
  '503': number;
  '504': number;
  other: number;
}

/** What the hosts showed during a step or a flood (the most over its window; CPU averaged). */
export interface HostFigures {
  /** Per LB: the most requests waiting in its queue for the web backend, the longest average queue time (ms). */
  lbs: Record<string, { maxQueue: number; maxQueueMs: number }>;
  /** Per web node: CPU (cores used), busy PHP-FPM children, requests waiting for a child, Apache's busy workers. */
  webs: Record<string, { cpu: number | null; fpmBusy: number; fpmQueue: number; apacheBusy: number | null }>;
  /** The database's connections in use (most). */
  dbConnections: number | null;
}

/** What a load did over a window. Latency from each request's due moment (ms). */
export interface LoadFigures {
  /** Requests due in the window. */
  requests: number;
  /** Of those, answered without a 5xx. */
  answered: number;
  /** Answered (without a 5xx) requests per second, by when they ended. */
  served: number;
  /** Latency of the answered requests. */
  p50: number;
  p99: number;
  p999: number;
  max: number;
  /** p99 of every request, answered or not (what the users waited, a timeout counted as its wait). */
  p99All: number;
  errors: ErrorCounts;
  /** 503s answered before the LB's queue timeout had run out (they did not wait in its queue). */
  early503: number;
}

/** One constant-rate step of a ramp, or a flood. */
export interface LoadWindow extends LoadFigures {
  /** Requests per second asked for. */
  rate: number;
  seconds: number;
  hosts: HostFigures;
}

export interface RampStep extends LoadWindow {
  /** p99 under the SLO, and (almost) every request answered. */
  underSlo: boolean;
  /** It missed the SLO and was run once more, and the repeat held: a hiccup, not the limit (the repeat decides). */
  repeated?: boolean;
}

export interface Flood extends LoadWindow {
  /** The multiple of the measured capacity. */
  factor: number;
  /** served / capacity. */
  servedRatio: number;
  /** The log lines over the flood and its recovery. */
  logs: { tooManyConnections: number | null; maxRequestWorkers: number; maxChildren: number };
  /** After the flood, at half the capacity: ms until every second's p99 was under the SLO again (null: not within the window). */
  recoveryMs: number | null;
}

/** A ramp (and its floods) on one target: the cluster through the VIP, or one web node alone. */
export interface CapacityRun {
  /**
   * cluster: through the VIP, every web node; one-node: through the VIP, the other web nodes drained;
   * single-box: one web node reached directly.
   */
  target: 'cluster' | 'one-node' | 'single-box';
  url: string;
  webs: string[];
  steps: RampStep[];
  /** The highest rate served with p99 under the SLO (req/s); null when not even the first step was. */
  capacity: number | null;
  /** The last step before the p99 more than doubled against the lightest step's (req/s). */
  knee: number | null;
  floods: Flood[];
}

export interface CapacityReport {
  sloMs: number;
  /** The LBs' `timeout queue` (ms): a 503 before it did not wait in the queue. */
  queueTimeoutMs: number;
  stepSeconds: number;
  floodSeconds: number;
  cluster: CapacityRun;
  oneNode?: CapacityRun;
  singleBox?: CapacityRun;
  /** The cluster's capacity over the one-node cluster's. */
  scaleRatio: number | null;
}

/** The data the script reads from script#failover-data: the report and the colours the page's legends use too. */
export interface ChartColors {
  nodes: Record<string, string>;
  lbs: Record<string, string>;
  errors: string;
  p50: string;
  p99: string;
  events: Record<string, string>;
}
