// metrics.ts — a small Prometheus registry (counters, gauges, histograms in
// the text exposition format 0.0.4) and the service's metric set: fork, exec
// and total time histograms, executions by outcome, errors by code, timeouts,
// crashes, HTTP requests, and gauges read at scrape time (pool, live forks,
// in-flight, queue). Times are recorded in seconds, per Prometheus convention.

type Labels = Record<string, string>;

const esc = (v: string): string => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
const labelText = (l: Labels): string => {
  const ks = Object.keys(l);
  return ks.length === 0 ? '' : '{' + ks.map((k) => `${k}="${esc(l[k]!)}"`).join(',') + '}';
};
const num = (n: number): string => (Number.isFinite(n) ? String(n) : n > 0 ? '+Inf' : n < 0 ? '-Inf' : 'NaN');

interface Metric { render(): string }

export class Counter implements Metric {
  private readonly values = new Map<string, { labels: Labels; v: number }>();
  constructor(readonly name: string, readonly help: string) {}
  inc(labels: Labels = {}, by = 1): void {
    const k = labelText(labels);
    const e = this.values.get(k);
    if (e) e.v += by; else this.values.set(k, { labels, v: by });
  }
  get(labels: Labels = {}): number { return this.values.get(labelText(labels))?.v ?? 0; }
  render(): string {
    const out = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    if (this.values.size === 0) out.push(`${this.name} 0`);
    for (const { labels, v } of this.values.values()) out.push(`${this.name}${labelText(labels)} ${num(v)}`);
    return out.join('\n');
  }
}

export class Gauge implements Metric {
  constructor(readonly name: string, readonly help: string, private readonly read: () => number) {}
  render(): string {
    return [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} gauge`, `${this.name} ${num(this.read())}`].join('\n');
  }
}

/** A family read at render time, one sample per label set (e.g. per template). */
export class Sampled implements Metric {
  constructor(readonly name: string, readonly help: string, private readonly type: 'gauge' | 'counter',
    private readonly read: () => Array<{ labels: Labels; v: number }>) {}
  render(): string {
    const out = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} ${this.type}`];
    for (const { labels, v } of this.read()) out.push(`${this.name}${labelText(labels)} ${num(v)}`);
    return out.join('\n');
  }
}

export class Histogram implements Metric {
  private readonly counts: number[];
  private sum = 0;
  private count = 0;
  constructor(readonly name: string, readonly help: string, readonly buckets: readonly number[]) {
    this.counts = new Array<number>(buckets.length).fill(0);
  }
  observe(v: number): void {
    if (!Number.isFinite(v)) return;
    this.sum += v;
    this.count++;
    for (let i = 0; i < this.buckets.length; i++) if (v <= this.buckets[i]!) this.counts[i]!++;
  }
  get total(): number { return this.count; }
  render(): string {
    const out = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    this.buckets.forEach((b, i) => out.push(`${this.name}_bucket{le="${num(b)}"} ${this.counts[i]}`));
    out.push(`${this.name}_bucket{le="+Inf"} ${this.count}`, `${this.name}_sum ${num(this.sum)}`, `${this.name}_count ${this.count}`);
    return out.join('\n');
  }
}

const TIME_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

export interface GaugeSources {
  poolReady: () => number;
  poolTarget: () => number;
  liveForks: () => number;
  engineInFlight: () => number;
  running: () => number;
  queued: () => number;
  templateReady: () => number;
  resultBytes: () => number;
  bodyBytes: () => number;
  /** Warm-fork pool counters per template (absent when the engine keeps none). */
  warm?: () => Array<{ template: string; ready: number; taken: number; misses: number; recycled: number; recycleFailed: number }>;
}

/** The service's metrics. */
export class ServiceMetrics {
  readonly forkTime = new Histogram('forkbox_fork_duration_seconds', 'Time to fork a VM from the template snapshot.', TIME_BUCKETS);
  readonly execTime = new Histogram('forkbox_exec_duration_seconds', 'Time the code ran inside the fork.', TIME_BUCKETS);
  readonly totalTime = new Histogram('forkbox_total_duration_seconds', 'Fork plus exec plus teardown, per execution.', TIME_BUCKETS);
  readonly executions = new Counter('forkbox_executions_total', 'Executions finished, by language and outcome (exited, timeout, crashed, cancelled).');
  readonly errors = new Counter('forkbox_errors_total', 'Requests answered with an error envelope, by error code.');
  readonly timeouts = new Counter('forkbox_timeouts_total', 'Executions stopped at their deadline.');
  readonly crashes = new Counter('forkbox_crashes_total', 'Executions whose sandbox crashed.');
  readonly requests = new Counter('forkbox_http_requests_total', 'HTTP requests, by route and status code.');
  private readonly all: Metric[];

  constructor(g: GaugeSources) {
    this.all = [
      this.forkTime, this.execTime, this.totalTime, this.executions, this.errors, this.timeouts, this.crashes, this.requests,
      new Gauge('forkbox_pool_ready', 'Pre-created VM shells ready in the pool.', g.poolReady),
      new Gauge('forkbox_pool_target', 'Pool size the engine keeps warm.', g.poolTarget),
      new Gauge('forkbox_live_forks', 'VMs alive right now.', g.liveForks),
      new Gauge('forkbox_engine_inflight', 'Executions inside the engine right now.', g.engineInFlight),
      new Gauge('forkbox_admission_running', 'Executions holding a concurrency slot.', g.running),
      new Gauge('forkbox_admission_queued', 'Executions waiting for a concurrency slot.', g.queued),
      new Gauge('forkbox_template_ready', '1 when the default template is ready.', g.templateReady),
      new Gauge('forkbox_result_bytes_held', 'Bytes (JSON) of finished results not yet sent.', g.resultBytes),
      new Gauge('forkbox_body_bytes_held', 'Bytes of request bodies held by unfinished exec requests.', g.bodyBytes),
    ];
    const warm = g.warm;
    if (warm) {
      const per = (k: 'ready' | 'taken' | 'misses' | 'recycled' | 'recycleFailed') => () =>
        warm().map((w) => ({ labels: { template: w.template }, v: w[k] }));
      this.all.push(
        new Sampled('forkbox_warm_forks_ready', 'Warm or recycled forks ready to serve an exec, by template.', 'gauge', per('ready')),
        new Sampled('forkbox_warm_forks_taken_total', 'Execs served by a warm or recycled fork, by template.', 'counter', per('taken')),
        new Sampled('forkbox_warm_forks_missed_total', 'Execs that found no ready fork and forked fresh, by template.', 'counter', per('misses')),
        new Sampled('forkbox_forks_recycled_total', 'One-shot forks reset in place after a clean answer, by template.', 'counter', per('recycled')),
        new Sampled('forkbox_forks_recycle_failed_total', 'Recycles that failed (the fork was destroyed), by template.', 'counter', per('recycleFailed')),
      );
    }
  }

  render(): string {
    return this.all.map((m) => m.render()).join('\n') + '\n';
  }
}
