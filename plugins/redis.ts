import fp from 'fastify-plugin'
import type { Redis } from 'ioredis'

declare module 'fastify' {
  interface FastifyInstance {
    /** The shared Redis client, or undefined when REDIS_URL is unset. */
    redis: Redis | undefined
  }
}

/** Connects to Redis when REDIS_URL is set. Redis being down degrades the service, never blocks it. */
export default fp<{ url: string | undefined }>(async function redis (app, { url }) {
  if (url === undefined) {
    app.decorate('redis', undefined)
    return
  }
  // Loaded only when configured: ioredis is a good share of start-up time, for nothing without Redis.
  const { Redis } = await import('ioredis')
  const client = new Redis(url, {
    lazyConnect: true,
    // Fail a command fast while disconnected instead of queueing it: callers have fallbacks.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2000,
    retryStrategy: (attempt) => Math.min(attempt * 200, 2000)
  })
  client.on('error', (err) => { app.log.warn({ err: err.message }, 'redis error') })
  // Waits at most connectTimeout: a Redis that is down is retried in the background and reported
  // by readiness, but does not stop the service from starting.
  await client.connect().catch((err: Error) => { app.log.warn({ err: err.message }, 'redis not reachable at start-up') })
  app.addHook('onClose', async () => { client.disconnect() })
  app.decorate('redis', client)
}, { name: 'redis' })
