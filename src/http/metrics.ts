import type { Middleware } from 'koa';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { SqlClient } from '../storage/sql.js';

/** Prometheus metrics: requests by interaction and status, latency, and the database pool. */
export class Metrics {
  readonly registry = new Registry();
  private readonly requests = new Counter({
    name: 'carelens_http_requests_total',
    help: 'HTTP requests by FHIR interaction and status',
    labelNames: ['interaction', 'status'],
    registers: [this.registry],
  });
  private readonly latency = new Histogram({
    name: 'carelens_http_request_duration_seconds',
    help: 'HTTP request latency by FHIR interaction',
    labelNames: ['interaction'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });

  constructor(sql: SqlClient) {
    collectDefaultMetrics({ register: this.registry });
    const pool = sql.poolStats.bind(sql);
    for (const key of ['total', 'idle', 'waiting'] as const) {
      new Gauge({
        name: `carelens_db_pool_${key}_connections`,
        help: `Database pool connections (${key})`,
        registers: [this.registry],
        collect() {
          this.set(pool()[key]);
        },
      });
    }
  }

  middleware(): Middleware {
    return async (ctx, next) => {
      const end = this.latency.startTimer();
      try {
        await next();
      } finally {
        const interaction = interactionOf(ctx.method, ctx.path);
        end({ interaction });
        this.requests.inc({ interaction, status: String(ctx.status) });
      }
    };
  }
}

/** A low-cardinality label for the FHIR interaction a request performs. */
export function interactionOf(method: string, path: string): string {
  if (!path.startsWith('/fhir')) {
    return path.split('/')[1] || 'root';
  }
  const s = path.slice(5).split('/').filter(Boolean);
  const op = s.find((x) => x.startsWith('$'));
  if (op) {
    return `operation:${op}`;
  }
  if (s.length === 0) {
    return method === 'POST' ? 'batch/transaction' : 'base';
  }
  if (s[0] === 'metadata') {
    return 'capabilities';
  }
  if (s.includes('_history')) {
    return s.length >= 4 ? 'vread' : 'history';
  }
  if (s[1] === '_search') {
    return 'search-type';
  }
  const byMethod: Record<string, [string, string]> = {
    GET: ['search-type', 'read'],
    HEAD: ['search-type', 'read'],
    POST: ['create', 'create'],
    PUT: ['conditional-update', 'update'],
    PATCH: ['conditional-patch', 'patch'],
    DELETE: ['conditional-delete', 'delete'],
  };
  return byMethod[method]?.[s.length === 1 ? 0 : 1] ?? 'other';
}
