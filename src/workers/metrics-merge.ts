import { AggregatorRegistry, Gauge, type Registry } from 'prom-client';
import type { MetricJson } from './messages';

/**
 * How a metric combines over workers when not summed: process_* describe the one process (every worker
 * reads the same), settings and flags are equal or all-or-nothing, and shared tables (the per-address
 * table) are read whole by every worker.
 */
const AGGREGATORS: Readonly<Record<string, string>> = {
  wsgate_max_connections: 'max',
  wsgate_client_addresses: 'max',
  wsgate_idempotency_keys: 'max',
  wsgate_draining: 'max',
  wsgate_prototype_changes: 'max',
  wsgate_ready: 'min',
  wsgate_broker_up: 'min',
};

function aggregatorOf(m: MetricJson): string {
  if (m.name.startsWith('process_')) return 'max';
  return AGGREGATORS[m.name] ?? m.aggregator;
}

/** The value of an unlabelled metric in one worker's set (0 when absent). */
function valueOf(metrics: readonly MetricJson[], name: string): number {
  return metrics.find((m) => m.name === name)?.values[0]?.value ?? 0;
}

/**
 * One exposition for the process: every worker's metrics combined (counters and most gauges summed),
 * plus wsgate_workers and wsgate_worker_connections{worker}.
 */
export function mergeWorkerMetrics(perWorker: ReadonlyMap<number, readonly MetricJson[]>): Registry {
  const sets = [...perWorker.values()].map((metrics) => metrics.map((m) => ({ ...m, aggregator: aggregatorOf(m), values: m.values.map((v) => ({ ...v, labels: v.labels ?? {} })) })));
  const registry = AggregatorRegistry.aggregate(sets as never) as Registry;
  new Gauge({ name: 'wsgate_workers', help: 'Worker threads running and answering (--workers).', registers: [registry] }).set(perWorker.size);
  const connections = new Gauge({ name: 'wsgate_worker_connections', help: 'Open WebSocket connections by worker thread (sum: wsgate_connections).', labelNames: ['worker'], registers: [registry] });
  for (const [worker, metrics] of perWorker) connections.set({ worker: String(worker) }, valueOf(metrics, 'wsgate_connections'));
  return registry;
}
