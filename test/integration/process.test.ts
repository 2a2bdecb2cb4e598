import t from 'tap'
import { newUser } from '../helper.js'
import { collect, listening, postJson, run, startServer } from '../processes.js'

t.test('the server, over a real socket: signup, login, me, then a clean SIGTERM exit', async (t) => {
  const { child, base, exited } = await startServer(t)

  const fields = newUser()
  const signup = await postJson(`${base}/api/users`, fields)
  t.equal(signup.status, 201)
  const login = await postJson(`${base}/api/auth/login`, { email: fields.email, password: fields.password })
  t.equal(login.status, 200)
  const { access_token: token } = await login.json() as { access_token: string }
  const me = await fetch(`${base}/api/auth/me`, { headers: { authorization: `Bearer ${token}` } })
  t.equal(me.status, 200)
  t.equal((await me.json() as { email: string }).email, fields.email)
  const bad = await fetch(`${base}/api/users`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"oops"' })
  t.equal(bad.status, 400)
  t.match(bad.headers.get('content-type'), /application\/problem\+json/)

  child.kill('SIGTERM')
  const { code, stdout } = await exited
  t.equal(code, 0, 'exits 0 on SIGTERM')
  t.match(stdout, /shutting down/)
  t.notMatch(stdout, new RegExp(`${fields.password}|${token}`), 'no password or token in the log')
})

t.test('a bad configuration stops start-up with one line per bad variable', async (t) => {
  const { code, stderr } = await collect(run('server.ts', { PORT: 'eighty', LOG_LEVEL: 'chatty', JWT_SECRET: 'too-short' }))
  t.equal(code, 1)
  t.match(stderr, /^ {2}PORT: /m)
  t.match(stderr, /^ {2}LOG_LEVEL: /m)
  t.match(stderr, /^ {2}JWT_SECRET: .*\(value hidden\)/m)
  t.notMatch(stderr, /too-short/, 'the secret is not echoed')
})

t.test('without JWT_SECRET in development it starts with a warning', async (t) => {
  const child = run('server.ts', { PORT: '0', HOST: '127.0.0.1', PGLITE_DATA_DIR: 'memory://', NODE_ENV: 'development', JWT_SECRET: '', DATABASE_URL: '' })
  const exited = collect(child)
  t.teardown(() => { child.kill('SIGKILL') })
  await listening(child)
  child.kill('SIGINT')
  const { code, stdout } = await exited
  t.equal(code, 0)
  t.match(stdout, /JWT_SECRET is not set/)
})

t.test('a start-up failure exits 1 with the reason', async (t) => {
  const { code, stderr } = await collect(run('server.ts', { DATABASE_URL: 'postgres://postgres@127.0.0.1:1/nowhere', DB_CONNECTION_TIMEOUT_MS: '300' }))
  t.equal(code, 1)
  t.match(stderr, /failed to start/)
})
