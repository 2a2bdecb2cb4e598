import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { sql } from 'kysely'
import { setTimeout as delay } from 'node:timers/promises'
import { Type } from 'typebox'
import { noAuth } from '../schemas.js'

// A probe must answer well inside the kubelet's timeout (1 s by default) even when a dependency hangs.
const CHECK_TIMEOUT_MS = 800

const CheckResult = Type.Union([Type.Literal('ok'), Type.Literal('failed'), Type.Literal('skipped')])
const Readiness = Type.Object({
  status: Type.Union([Type.Literal('ok'), Type.Literal('unavailable')]),
  checks: Type.Object({
    database: CheckResult,
    redis: CheckResult,
    shutdown: Type.Union([Type.Literal('ok'), Type.Literal('draining')])
  })
}, { description: 'Which checks passed; any failure makes the status unavailable' })
const Live = Type.Object({ status: Type.Literal('ok') })

async function within (check: () => Promise<unknown>): Promise<'ok' | 'failed'> {
  const timer = new AbortController()
  const outcome = await Promise.race([
    check().then(() => 'ok' as const, () => 'failed' as const),
    // Race's own handler takes the AbortError once the timer is cancelled below.
    delay(CHECK_TIMEOUT_MS, 'failed' as const, { signal: timer.signal })
  ])
  timer.abort()
  return outcome
}

// Probes run every few seconds: no info-level logs, no metrics series, never shed under pressure.
const probeConfig = { skipMetrics: true, pressureHandler: () => undefined }

const health: FastifyPluginAsyncTypebox = async (app) => {
  const live = async (): Promise<{ status: 'ok' }> => ({ status: 'ok' })
  const liveSchema = {
    tags: ['health'],
    summary: 'Liveness: the process is up and serving (checks no dependency)',
    description: 'For a liveness probe: restart the process when this fails.',
    security: noAuth,
    response: { 200: Live }
  }
  app.get('/health/live', { logLevel: 'warn', config: probeConfig, schema: { ...liveSchema, operationId: 'getLiveness' } }, live)
  app.get('/health', { logLevel: 'warn', config: probeConfig, schema: { ...liveSchema, operationId: 'getHealth', description: 'Kept for compatibility; same as /health/live' } }, live)

  app.get('/health/ready', {
    logLevel: 'warn',
    config: probeConfig,
    schema: {
      operationId: 'getReadiness',
      tags: ['health'],
      summary: 'Readiness: the database (and Redis, when configured) answer and the process is not shutting down',
      description: 'For a readiness probe: send no traffic while this is 503. checks names what failed; redis is skipped when REDIS_URL is unset.',
      security: noAuth,
      response: { 200: Readiness, 503: Readiness }
    }
  }, async (_request, reply) => {
    const [database, redis] = await Promise.all([
      within(async () => await sql`select 1`.execute(app.database.db)),
      app.redis === undefined ? 'skipped' as const : within(async () => await app.redis?.ping())
    ])
    const shutdown = app.lifecycle.draining ? 'draining' as const : 'ok' as const
    const ready = database === 'ok' && redis !== 'failed' && shutdown === 'ok'
    return await reply.code(ready ? 200 : 503).send({ status: ready ? 'ok' : 'unavailable', checks: { database, redis, shutdown } })
  })
}

export default health
