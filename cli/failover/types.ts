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
  /** The limit (the figure must be at most this). */
  max: number;
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
