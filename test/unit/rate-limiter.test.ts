import t from 'tap'
import { createRedisRateLimiter } from '../../plugins/throttle.js'
import { TooManyRequestsError } from '../../services/errors.js'
import { createMemoryRateLimiter } from '../../services/rate-limiter.js'
import { createThrottle } from '../../services/throttle.js'
import { an } from '../fakes.js'

t.test('memory limiter: counts within a window, starts over after it', async (t) => {
  let clock = 1_000
  const limiter = createMemoryRateLimiter(100, () => clock)
  t.same(await limiter.peek('k'), { count: 0, resetMs: 0 })
  t.same(await limiter.hit('k'), { count: 1, resetMs: 100 })
  clock += 40
  t.same(await limiter.hit('k'), { count: 2, resetMs: 60 })
  t.same(await limiter.peek('k'), { count: 2, resetMs: 60 })
  clock += 60
  t.same(await limiter.peek('k'), { count: 0, resetMs: 0 }, 'the window ended')
  t.same(await limiter.hit('k'), { count: 1, resetMs: 100 })
  await limiter.reset('k')
  t.same(await limiter.peek('k'), { count: 0, resetMs: 0 })
})

t.test('memory limiter: expired windows are swept once many keys pile up', async (t) => {
  let clock = 0
  const limiter = createMemoryRateLimiter(10, () => clock)
  for (let i = 0; i < 10_000; i++) await limiter.hit(`old-${i}`)
  clock = 20
  await limiter.hit('new')
  // Nothing to observe directly but behaviour: old keys are gone and new counts are right.
  t.same(await limiter.peek('old-1'), { count: 0, resetMs: 0 })
  t.same(await limiter.peek('new'), { count: 1, resetMs: 10 })
})

t.test('throttle: the account limit and the IP limit each refuse, with Retry-After', async (t) => {
  let clock = 0
  const throttle = createThrottle(createMemoryRateLimiter(60_000, () => clock), { loginFailuresPerAccount: 2, loginFailuresPerIp: 3, signupsPerIp: 1 })
  await throttle.recordLoginFailure('Ada@Example.com', '1.1.1.1')
  await throttle.recordLoginFailure('ada@example.com ', '2.2.2.2')
  clock = 30_500
  const err = await throttle.assertLoginAllowed('ada@example.com', '3.3.3.3').catch((e: unknown) => e)
  t.type(err, TooManyRequestsError, 'the account key ignores case and spacing')
  t.equal((err as TooManyRequestsError).retryAfterSeconds, 30, 'Retry-After rounds the remaining window up')
  await throttle.recordLoginSuccess('ada@example.com')
  await throttle.assertLoginAllowed('ada@example.com', '3.3.3.3')
  for (const email of ['a@x.io', 'b@x.io', 'c@x.io']) await throttle.recordLoginFailure(email, '9.9.9.9')
  await t.rejects(throttle.assertLoginAllowed('d@x.io', '9.9.9.9'), an(TooManyRequestsError))
  await throttle.assertSignupAllowed('5.5.5.5')
  await t.rejects(throttle.assertSignupAllowed('5.5.5.5'), an(TooManyRequestsError))
})

t.test('Redis limiter: falls back to memory when a command fails, and says so', async (t) => {
  const failing = {
    multi: () => ({ incr () { return this }, pexpire () { return this }, pttl () { return this }, get () { return this }, exec: async () => { throw new Error('connection is closed') } }),
    del: async () => { throw new Error('connection is closed') }
  }
  const warnings: unknown[] = []
  const memory = createMemoryRateLimiter(1000)
  const limiter = createRedisRateLimiter(failing as never, 1000, memory, (err) => { warnings.push(err) })
  t.equal((await limiter.hit('k')).count, 1)
  t.equal((await limiter.hit('k')).count, 2)
  t.equal((await limiter.peek('k')).count, 2)
  await limiter.reset('k')
  t.equal((await memory.peek('k')).count, 0, 'the reset reached the fallback')
  t.equal(warnings.length, 4)
})

t.test('Redis limiter: reads counts and windows from the replies, treating missing replies as empty', async (t) => {
  const replies: Array<Array<[Error | null, unknown]> | null> = [[[null, 3], [null, 1], [null, 900]], [[null, null], [null, -2]], null]
  const fake = {
    multi: () => ({ incr () { return this }, pexpire () { return this }, pttl () { return this }, get () { return this }, exec: async () => replies.shift() ?? null }),
    del: async () => 1
  }
  const limiter = createRedisRateLimiter(fake as never, 1000, createMemoryRateLimiter(1000), () => {})
  t.same(await limiter.hit('k'), { count: 3, resetMs: 900 })
  t.same(await limiter.peek('k'), { count: 0, resetMs: 0 }, 'a missing key: no count, no window')
  t.same(await limiter.peek('k'), { count: 0, resetMs: 0 }, 'a null reply (aborted transaction)')
  await limiter.reset('k')
})
