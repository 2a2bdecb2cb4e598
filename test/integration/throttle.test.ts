import { randomBytes } from 'node:crypto'
import t from 'tap'
import { assertProblem, build, newUser } from '../helper.js'
import type { FastifyInstance } from 'fastify'

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
// A fresh client address per test, so counters left in Redis by earlier runs never interfere.
const someIp = (): string => `10.${randomBytes(1)[0] ?? 0}.${randomBytes(1)[0] ?? 0}.${randomBytes(1)[0] ?? 0}`
const attempt = async (app: FastifyInstance, email: string, password: string, ip: string) =>
  await app.inject({ method: 'POST', url: '/api/auth/login', remoteAddress: ip, payload: { email, password } })

async function signUpAt (app: FastifyInstance, ip: string) {
  const fields = newUser()
  const res = await app.inject({ method: 'POST', url: '/api/users', remoteAddress: ip, payload: fields })
  if (res.statusCode !== 201) throw new Error(res.body)
  return fields
}

t.test('login throttling in memory', async (t) => {
  const app = await build(t, { env: { LOGIN_MAX_FAILURES_PER_ACCOUNT: '3', LOGIN_MAX_FAILURES_PER_IP: '5', SIGNUP_MAX_PER_IP: '2' } })

  t.test('after N failures on one account, the next attempt is 429 with Retry-After, even with the right password', async (t) => {
    const ip = someIp()
    const ada = await signUpAt(app, someIp())
    for (let i = 0; i < 3; i++) assertProblem(t, await attempt(app, ada.email, 'wrong-password', ip), 401, 'INVALID_CREDENTIALS')
    const refused = await attempt(app, ada.email, ada.password, someIp())
    assertProblem(t, refused, 429, 'TOO_MANY_REQUESTS')
    const retryAfter = Number(refused.headers['retry-after'])
    t.ok(retryAfter > 0 && retryAfter <= 900, `Retry-After ${retryAfter}`)
    const other = await signUpAt(app, someIp())
    t.equal((await attempt(app, other.email, other.password, ip)).statusCode, 200, 'other accounts are unaffected')
  })

  t.test('a success clears the account\'s failures', async (t) => {
    const ada = await signUpAt(app, someIp())
    for (let i = 0; i < 2; i++) await attempt(app, ada.email, 'wrong-password', someIp())
    t.equal((await attempt(app, ada.email, ada.password, someIp())).statusCode, 200)
    for (let i = 0; i < 2; i++) await attempt(app, ada.email, 'wrong-password', someIp())
    t.equal((await attempt(app, ada.email, ada.password, someIp())).statusCode, 200, 'two more failures are not three')
  })

  t.test('failures from one IP across many accounts are limited too', async (t) => {
    const ip = someIp()
    for (let i = 0; i < 5; i++) await attempt(app, `nobody${i}-${ip}@example.com`, 'wrong-password', ip)
    assertProblem(t, await attempt(app, 'someone-else@example.com', 'whatever-password', ip), 429, 'TOO_MANY_REQUESTS')
    t.equal((await attempt(app, 'someone-else@example.com', 'whatever-password', someIp())).statusCode, 401, 'other IPs are unaffected')
  })

  t.test('signups are limited per IP', async (t) => {
    const ip = someIp()
    await signUpAt(app, ip)
    await signUpAt(app, ip)
    assertProblem(t, await app.inject({ method: 'POST', url: '/api/users', remoteAddress: ip, payload: newUser() }), 429, 'TOO_MANY_REQUESTS')
    t.equal((await app.inject({ method: 'POST', url: '/api/users', remoteAddress: someIp(), payload: newUser() })).statusCode, 201)
  })
})

t.test('with Redis, two app instances share the counts', async (t) => {
  const env = { REDIS_URL, LOGIN_MAX_FAILURES_PER_ACCOUNT: '4' }
  const one = await build(t, { env })
  const two = await build(t, { env })
  const fields = newUser({ email: `shared-${randomBytes(6).toString('hex')}@example.com` })
  t.equal((await one.inject({ method: 'POST', url: '/api/users', payload: fields })).statusCode, 201)
  t.equal((await two.inject({ method: 'POST', url: '/api/users', payload: fields })).statusCode, 201, 'each instance has its own database here')
  for (const app of [one, two, one, two]) assertProblem(t, await attempt(app, fields.email, 'wrong-password', someIp()), 401, 'INVALID_CREDENTIALS')
  assertProblem(t, await attempt(one, fields.email, fields.password, someIp()), 429, 'TOO_MANY_REQUESTS')
  assertProblem(t, await attempt(two, fields.email, fields.password, someIp()), 429, 'TOO_MANY_REQUESTS')
})

t.test('with Redis down, throttling falls back to memory and logins keep working', async (t) => {
  const app = await build(t, { env: { REDIS_URL: 'redis://127.0.0.1:1', LOGIN_MAX_FAILURES_PER_ACCOUNT: '2' } })
  const ada = await signUpAt(app, someIp())
  t.equal((await attempt(app, ada.email, ada.password, someIp())).statusCode, 200)
  for (let i = 0; i < 2; i++) await attempt(app, ada.email, 'wrong-password', someIp())
  assertProblem(t, await attempt(app, ada.email, ada.password, someIp()), 429, 'TOO_MANY_REQUESTS')
})

t.test('passwords: common ones and ones equal to the email or username are refused', async (t) => {
  const app = await build(t)
  for (const [over, why] of [
    [{ password: 'password123' }, 'common'],
    [{ password: 'QWERTYUIOP' }, 'common, any case'],
    [{ username: 'ada_lovelace', password: 'Ada_Lovelace' }, 'the username'],
    [{ email: 'grace.hopper@example.com', password: 'grace.hopper' }, 'the email\'s local part'],
    [{ email: 'grace@example.com', password: 'grace@example.com' }, 'the email']
  ] as const) {
    assertProblem(t, await app.inject({ method: 'POST', url: '/api/users', payload: newUser(over) }), 400, 'WEAK_PASSWORD')
    t.pass(why)
  }
  const fields = newUser()
  const created = (await app.inject({ method: 'POST', url: '/api/users', payload: fields })).json()
  const token = (await attempt(app, fields.email, fields.password, someIp())).json().access_token as string
  const res = await app.inject({ method: 'PATCH', url: `/api/users/${String(created.id)}`, headers: { authorization: `Bearer ${token}` }, payload: { password: 'iloveyou', current_password: fields.password } })
  assertProblem(t, res, 400, 'WEAK_PASSWORD')
})
