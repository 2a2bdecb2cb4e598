import fp from 'fastify-plugin'
import type { Redis } from 'ioredis'
import type { Config } from '../config.js'
import { createMemoryRateLimiter, type RateLimiter } from '../services/rate-limiter.js'
import { createThrottle, type Throttle } from '../services/throttle.js'

declare module 'fastify' {
  interface FastifyInstance {
    throttle: Throttle
  }
}

/**
 * Counters in Redis, shared by every replica. While Redis is unreachable each replica counts in
 * its own memory instead: limits loosen by the replica count, but logins keep working (fail open
 * on the shared store, never on the limit itself).
 */
export function createRedisRateLimiter (redis: Redis, windowMs: number, fallback: RateLimiter, warn: (err: unknown) => void): RateLimiter {
  const guarded = <T>(shared: () => Promise<T>, local: () => Promise<T>) => async (): Promise<T> => {
    try {
      return await shared()
    } catch (err) {
      warn(err)
      return await local()
    }
  }
  const result = (replies: Array<[Error | null, unknown]> | null, countAt: number, ttlAt: number) => ({
    count: Number(replies?.[countAt]?.[1] ?? 0),
    resetMs: Math.max(0, Number(replies?.[ttlAt]?.[1] ?? 0))
  })
  return {
    hit: async (key) => await guarded(
      async () => result(await redis.multi().incr(key).pexpire(key, windowMs, 'NX').pttl(key).exec(), 0, 2),
      async () => await fallback.hit(key))(),
    peek: async (key) => await guarded(
      async () => result(await redis.multi().get(key).pttl(key).exec(), 0, 1),
      async () => await fallback.peek(key))(),
    reset: async (key) => await guarded(
      async () => { await redis.del(key) },
      async () => { await fallback.reset(key) })()
  }
}

export default fp<{ config: Config['throttle'] }>(async function throttle (app, { config }) {
  const windowMs = config.windowSeconds * 1000
  const memory = createMemoryRateLimiter(windowMs)
  const limiter = app.redis === undefined
    ? memory
    : createRedisRateLimiter(app.redis, windowMs, memory, (err) => { app.log.warn({ err: (err as Error).message }, 'throttle: redis unavailable, counting in memory') })
  app.decorate('throttle', createThrottle(limiter, config))
}, { name: 'throttle', dependencies: ['redis'] })
