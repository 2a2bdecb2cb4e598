import fp from 'fastify-plugin'
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import { UnauthorizedError } from '../services/errors.js'
import { secretsEqual } from '../services/secret-compare.js'

declare module 'fastify' {
  interface FastifyInstance {
    metrics: {
      registry: Registry
      logins: Counter<'outcome'>
      refreshReuse: Counter
    }
  }
  interface FastifyContextConfig {
    /** Leave this route out of the request metrics (the scrape itself, probes). */
    skipMetrics?: boolean
  }
}

/**
 * Prometheus metrics on a registry of the app's own (so several apps in one process, as in the
 * tests, do not collide): process and runtime defaults (event loop delay, heap, GC), per-route
 * request counts and latency labelled by route pattern and status class, pool gauges, logins.
 */
export default fp<{ token: string | undefined }>(async function metrics (app, { token }) {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, prefix: 'gatehouse_' })

  const duration = new Histogram({
    name: 'gatehouse_http_request_duration_seconds',
    help: 'Time to answer a request, by route pattern (never the raw URL), method and status class',
    labelNames: ['method', 'route', 'status_class'],
    buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry]
  })
  const logins = new Counter({ name: 'gatehouse_logins_total', help: 'Login attempts by outcome', labelNames: ['outcome'], registers: [registry] })
  // Read at scrape time from the pool itself, so they cannot drift from it.
  registry.registerMetric(new Gauge({
    name: 'gatehouse_db_pool_waiting',
    help: 'Requests waiting for a database connection',
    registers: [],
    collect () { this.set(app.database.waitingCount()) }
  }))
  registry.registerMetric(new Gauge({
    name: 'gatehouse_db_pool_connections',
    help: 'Database connections by state',
    labelNames: ['state'],
    registers: [],
    collect () {
      const { total, idle } = app.database.connections()
      this.set({ state: 'total' }, total)
      this.set({ state: 'idle' }, idle)
    }
  }))

  // prom-client hashes a label object on every observation; the series are few, so each one's
  // child is kept and found by a plain string key instead.
  const series = new Map<string, Histogram.Internal<'method' | 'route' | 'status_class'>>()
  app.addHook('onResponse', (request, reply, done) => {
    if (request.routeOptions.config.skipMetrics !== true) {
      // Unmatched requests share one label, so probing random URLs cannot explode the series count.
      const route = request.routeOptions.url ?? 'unmatched'
      const statusClass = `${Math.floor(reply.statusCode / 100)}xx`
      const key = `${request.method} ${statusClass} ${route}`
      let child = series.get(key)
      if (child === undefined) {
        child = duration.labels({ method: request.method, route, status_class: statusClass })
        series.set(key, child)
      }
      child.observe(reply.elapsedTime / 1000)
    }
    done()
  })

  app.get('/metrics', { config: { skipMetrics: true }, logLevel: 'warn', schema: { hide: true } }, async (request, reply) => {
    if (token !== undefined && !secretsEqual(request.headers.authorization ?? '', `Bearer ${token}`)) {
      throw new UnauthorizedError('/metrics needs the metrics token')
    }
    return await reply.type(registry.contentType).send(await registry.metrics())
  })

  const refreshReuse = new Counter({ name: 'gatehouse_refresh_token_reuse_total', help: 'Rotated refresh tokens presented again (each revoked a session)', registers: [registry] })
  app.decorate('metrics', { registry, logins, refreshReuse })
}, { name: 'metrics', dependencies: ['db'] })
