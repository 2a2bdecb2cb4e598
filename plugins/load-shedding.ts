import underPressure from '@fastify/under-pressure'
import fp from 'fastify-plugin'
import type { Config } from '../config.js'

/**
 * Sheds load before it turns into timeouts: past any configured limit every request except the
 * probes gets 503 SERVICE_UNAVAILABLE with Retry-After (through the errors plugin).
 */
export default fp<{ config: Config['loadShedding'] }>(async function loadShedding (app, { config }) {
  await app.register(underPressure, {
    maxEventLoopDelay: config.eventLoopDelayMs,
    maxEventLoopUtilization: config.eventLoopUtilization,
    eventLoopUtilizationMode: 'interval',
    maxHeapUsedBytes: config.heapUsedBytes,
    retryAfter: 5,
    // A queue for database connections longer than this means requests would mostly time out.
    ...(config.dbWaiting > 0 && {
      healthCheck: async () => app.database.waitingCount() <= config.dbWaiting,
      healthCheckInterval: 250
    })
  })
}, { name: 'load-shedding', dependencies: ['db'] })
