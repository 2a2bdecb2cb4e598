/**
 * Leak check (issue 8): mixed traffic, errors included, must not grow the heap. After a warm-up
 * (JIT, caches, pools, the first pages of every table), the heap after a forced full GC is the
 * baseline; after LEAK_REQUESTS more requests of the same mix, the heap after GC must stay within
 * LEAK_BOUND_MIB of it. A leak of even a few hundred bytes per request shows at this count
 * (20 000 x 1 KiB = 20 MiB); the figures are reported with t.comment, and no time is asserted.
 *
 * Default (CI): 20 000 requests. The full check: LEAK_REQUESTS=100000 npx tap test/integration/memory.test.ts
 *
 * In process through inject(), so the heap measured is the app's, not a client's. GC is forced
 * through --expose-gc switched on at run time (v8.setFlagsFromString), so tap needs no node flags.
 */
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import type { InjectOptions } from 'fastify'
import t from 'tap'
import { ADMIN, ADMIN_ENV, build, loginToken, newUser, signUp } from '../helper.js'

const REQUESTS = Number(process.env.LEAK_REQUESTS ?? '20000')
const WARM_UP = Math.max(2000, Math.round(REQUESTS / 10))
const BOUND_MIB = Number(process.env.LEAK_BOUND_MIB ?? '16')
const CONCURRENCY = 8
const MIB = 1024 * 1024

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as (options?: { type: 'major' }) => void

/** The heap after full collections, once it has stopped shrinking (weak refs and finalizers settle). */
async function settledHeap (): Promise<number> {
  let last = Number.POSITIVE_INFINITY
  for (let i = 0; i < 10; i++) {
    gc()
    await new Promise((resolve) => setImmediate(resolve))
    const used = process.memoryUsage().heapUsed
    if (used >= last - 64 * 1024) return used
    last = used
  }
  return last
}

const mib = (bytes: number): string => `${(bytes / MIB).toFixed(1)} MiB`

t.test(`heap after GC stays within ${BOUND_MIB} MiB of its post-warm-up size over ${REQUESTS} mixed requests`, async (t) => {
  const app = await build(t, { env: { ...ADMIN_ENV, THROTTLE_WINDOW_SECONDS: '60' } })
  const users = await Promise.all(Array.from({ length: 4 }, async () => await signUp(app)))
  const adminToken = await loginToken(app, ADMIN.email, ADMIN.password)
  const admin = { authorization: `Bearer ${adminToken}` }
  const json = { 'content-type': 'application/json' }
  let n = 0

  /** The i-th request of the mix: reads, writes and every kind of refusal, in fixed proportions. */
  const mix = (i: number): InjectOptions => {
    const u = users[i % users.length] as (typeof users)[number]
    const other = users[(i + 1) % users.length] as (typeof users)[number]
    switch (i % 20) {
      case 0: return { url: '/health/live' }
      case 1: return { url: '/api/auth/me', headers: u.auth }
      case 2: return { url: `/api/users/${u.id}`, headers: u.auth }
      case 3: return { url: `/api/users/${other.id}`, headers: u.auth } // 403
      case 4: return { url: '/api/users?limit=20', headers: admin }
      case 5: return { url: '/api/users', headers: u.auth } // 403, not an admin
      case 6: return { url: '/api/users/not-a-uuid', headers: u.auth } // 400
      case 7: return { url: '/api/auth/me' } // 401, no token
      case 8: return { url: '/api/auth/me', headers: { authorization: `Bearer ${u.token.slice(0, -4)}AAAA` } } // 401, bad signature
      case 9: return { url: `/no/such/route/${i}` } // 404
      case 10: return { method: 'POST', url: '/api/users', headers: json, payload: '{"email": "oops' } // 400 malformed JSON
      case 11: return { method: 'POST', url: '/api/users', payload: { email: 'not-an-email', username: 'x', password: 'short' } } // 400 validation
      case 12: return { method: 'POST', url: '/api/users', headers: { 'content-type': 'text/plain' }, payload: 'hello' } // 415
      case 13: return { method: 'POST', url: '/api/auth/refresh', payload: { refresh_token: `bogus-${i}` } } // 401
      case 14: return { method: 'PATCH', url: `/api/users/${u.id}`, headers: u.auth, payload: { unknown: true } } // 400
      case 15: return { method: 'POST', url: '/api/users', payload: { ...newUser(), email: u.email } } // 409 taken
      case 16: return { url: `/api/users?email=${encodeURIComponent(u.email)}`, headers: admin }
      // Failed logins against the same few accounts: the throttle counts them (401, then 429).
      case 17: return { method: 'POST', url: '/api/auth/login', payload: { email: u.email, password: 'wrong-password' } }
      case 18: return { url: '/health/ready' }
      default: return (n++ % 5 === 0)
        ? { method: 'POST', url: '/api/users', payload: newUser() } // 201: the table grows, the heap must not
        : { url: '/.well-known/jwks.json' }
    }
  }

  const statuses = new Map<number, number>()
  const drive = async (from: number, count: number): Promise<void> => {
    let next = from
    const worker = async (): Promise<void> => {
      while (next < from + count) {
        const res = await app.inject(mix(next++))
        statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1)
      }
    }
    await Promise.all(Array.from({ length: CONCURRENCY }, worker))
  }

  const atStart = await settledHeap()
  await drive(0, WARM_UP)
  const afterWarmUp = await settledHeap()
  statuses.clear()
  await drive(WARM_UP, REQUESTS)
  const afterRun = await settledHeap()
  const { rss } = process.memoryUsage()

  t.notOk(statuses.has(500), 'no request failed with a 500')
  for (const status of [200, 201, 400, 401, 403, 404, 409, 415]) t.ok((statuses.get(status) ?? 0) > 0, `the mix included ${status}s`)
  t.comment(`statuses over ${REQUESTS} requests: ${JSON.stringify(Object.fromEntries([...statuses].sort((a, b) => a[0] - b[0])))}`)
  t.comment(`heap after GC: at start ${mib(atStart)}, after ${WARM_UP} warm-up requests ${mib(afterWarmUp)}, after ${REQUESTS} more ${mib(afterRun)} (growth ${mib(afterRun - afterWarmUp)}, ${((afterRun - afterWarmUp) / REQUESTS).toFixed(1)} bytes per request); RSS ${mib(rss)}`)
  t.ok(afterRun - afterWarmUp < BOUND_MIB * MIB, `heap growth ${mib(afterRun - afterWarmUp)} is under ${BOUND_MIB} MiB`)
})
