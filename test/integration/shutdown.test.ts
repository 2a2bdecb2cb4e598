import t from 'tap'
import { newUser } from '../helper.js'
import { logged, postJson, startServer } from '../processes.js'

t.test('graceful shutdown under load: readiness fails first, no accepted request fails, exit 0', async (t) => {
  const { child, base, exited } = await startServer(t, { SHUTDOWN_DELAY_MS: '1000' })
  const fields = newUser()
  t.equal((await postJson(`${base}/api/users`, fields)).status, 201)
  const login = async (): Promise<Response> => await postJson(`${base}/api/auth/login`, { email: fields.email, password: fields.password })
  const { access_token: token } = await (await login()).json() as { access_token: string }

  // Like a load balancer: keep sending until readiness says the pod is draining.
  const lb = { draining: false }
  const outcomes: string[] = []
  const worker = async (slow: boolean): Promise<void> => {
    while (!lb.draining) {
      try {
        const res = slow ? await login() : await fetch(`${base}/api/auth/me`, { headers: { authorization: `Bearer ${token}` } })
        await res.arrayBuffer()
        outcomes.push(String(res.status))
      } catch (err) {
        outcomes.push(`error: ${(err as Error).message}`)
      }
    }
  }
  const poller = (async () => {
    while (!lb.draining) {
      const res = await fetch(`${base}/health/ready`).catch(() => undefined)
      if (res?.status === 503) lb.draining = true
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  })()
  const workers = [worker(true), worker(true), worker(false), worker(false), worker(false)]
  await new Promise((resolve) => setTimeout(resolve, 500))
  child.kill('SIGTERM')
  await Promise.all([poller, ...workers])

  const { code } = await exited
  t.equal(code, 0, 'exits 0')
  t.ok(outcomes.length > 20, `served a stream of requests (${outcomes.length})`)
  t.same(outcomes.filter((o) => o !== '200'), [], 'every request sent before readiness failed succeeded')
})

t.test('graceful shutdown: requests in flight when the server closes still complete', async (t) => {
  const { child, base, exited } = await startServer(t)
  const fields = newUser()
  t.equal((await postJson(`${base}/api/users`, fields)).status, 201)
  // Logins hash with OWASP argon2id parameters: each takes tens of milliseconds, so these are in flight.
  const inFlight = Array.from({ length: 6 }, async () => {
    const res = await fetch(`${base}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json', connection: 'close' }, body: JSON.stringify({ email: fields.email, password: fields.password }) })
    return res.status
  })
  // Only once the server has logged all six as received are they truly in flight.
  await logged(child, /"url":"\/api\/auth\/login"/g, 6)
  child.kill('SIGTERM')
  t.same(await Promise.all(inFlight), [200, 200, 200, 200, 200, 200])
  t.equal((await exited).code, 0)
})
