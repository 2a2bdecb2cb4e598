import t from 'tap'
import { assertProblem, build, newUser } from '../helper.js'

t.test('signup', async (t) => {
  const app = await build(t)

  t.test('creates a user and answers 201 with Location and the user, without any password', async (t) => {
    const fields = newUser({ email: '  Ada.Lovelace@Example.COM ' })
    const res = await app.inject({ method: 'POST', url: '/api/users', payload: fields })
    t.equal(res.statusCode, 201)
    const user = res.json()
    t.same(Object.keys(user).sort(), ['created_at', 'email', 'id', 'role', 'updated_at', 'username'])
    t.equal(user.email, 'ada.lovelace@example.com', 'email stored trimmed and lower-cased')
    t.equal(user.username, fields.username)
    t.equal(user.role, 'user')
    t.match(user.id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, 'id is a UUIDv7')
    t.match(user.created_at, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/, 'ISO 8601 UTC')
    t.equal(res.headers.location, `/api/users/${user.id}`)
    t.notMatch(res.body, /password|argon2/, 'no password or hash anywhere in the body')
  })

  t.test('ids sort by creation time', async (t) => {
    const a = (await app.inject({ method: 'POST', url: '/api/users', payload: newUser() })).json().id
    const b = (await app.inject({ method: 'POST', url: '/api/users', payload: newUser() })).json().id
    t.ok(a < b, `${a} < ${b}`)
  })

  t.test('a duplicate email, in any case or spacing, is 409 EMAIL_ALREADY_EXISTS', async (t) => {
    const fields = newUser()
    t.equal((await app.inject({ method: 'POST', url: '/api/users', payload: fields })).statusCode, 201)
    const again = newUser({ email: ` ${fields.email.toUpperCase()}` })
    assertProblem(t, await app.inject({ method: 'POST', url: '/api/users', payload: again }), 409, 'EMAIL_ALREADY_EXISTS')
  })

  t.test('a username differing only in case is 409 USERNAME_ALREADY_EXISTS', async (t) => {
    const fields = newUser()
    t.equal((await app.inject({ method: 'POST', url: '/api/users', payload: fields })).statusCode, 201)
    const again = newUser({ username: fields.username.toUpperCase() })
    assertProblem(t, await app.inject({ method: 'POST', url: '/api/users', payload: again }), 409, 'USERNAME_ALREADY_EXISTS')
  })

  t.test('an invalid email is 400 INVALID_EMAIL', async (t) => {
    for (const email of ['not-an-email', 'a@b', 'two@@example.com', 'sp ace@example.com']) {
      const res = await app.inject({ method: 'POST', url: '/api/users', payload: newUser({ email }) })
      assertProblem(t, res, 400, 'INVALID_EMAIL')
    }
  })

  t.test('field rules are enforced with a list naming each bad field', async (t) => {
    const res = await app.inject({ method: 'POST', url: '/api/users', payload: { email: 'x@example.com', username: 'no spaces!', password: 'short' } })
    const body = assertProblem(t, res, 400, 'VALIDATION_FAILED')
    const fields = (body.errors as Array<{ field: string, in: string }>).map((e) => e.field).sort()
    t.same(fields, ['password', 'username'])
  })

  t.test('username and password length limits', async (t) => {
    const cases: Array<[Partial<ReturnType<typeof newUser>>, number]> = [
      [{ username: 'ab' }, 400],
      [{ username: 'a'.repeat(33) }, 400],
      [{ username: `u${'x'.repeat(31)}` }, 201],
      [{ password: 'x'.repeat(7) }, 400],
      [{ password: 'x'.repeat(8) }, 201],
      [{ password: 'x'.repeat(128) }, 201],
      [{ password: 'x'.repeat(129) }, 400]
    ]
    for (const [over, status] of cases) {
      const res = await app.inject({ method: 'POST', url: '/api/users', payload: newUser(over) })
      t.equal(res.statusCode, status, JSON.stringify(over).slice(0, 60))
    }
  })

  t.test('a role (or id, or any unknown field) in the body is refused, not ignored', async (t) => {
    for (const extra of [{ role: 'admin' }, { role: 'user' }, { id: '01a21226-ca21-7191-8cfb-01f1e5441dc5' }, { created_at: '2020-01-01T00:00:00Z' }]) {
      const res = await app.inject({ method: 'POST', url: '/api/users', payload: { ...newUser(), ...extra } })
      const body = assertProblem(t, res, 400, 'VALIDATION_FAILED')
      t.match(body.errors, [{ in: 'body', field: Object.keys(extra)[0] }])
    }
  })

  t.test('wrong JSON types are refused rather than coerced', async (t) => {
    const res = await app.inject({ method: 'POST', url: '/api/users', payload: { ...newUser(), password: 123456789 } })
    const body = assertProblem(t, res, 400, 'VALIDATION_FAILED')
    t.match(body.errors, [{ field: 'password', message: /string/ }])
  })

  t.test('missing fields are named', async (t) => {
    const res = await app.inject({ method: 'POST', url: '/api/users', payload: {} })
    const body = assertProblem(t, res, 400, 'VALIDATION_FAILED')
    t.same((body.errors as Array<{ field: string }>).map((e) => e.field).sort(), ['email', 'password', 'username'])
  })

  t.test('20 concurrent signups with one email give exactly one 201 and 19 409s', async (t) => {
    const email = newUser().email
    const results = await Promise.all(Array.from({ length: 20 }, async () =>
      await app.inject({ method: 'POST', url: '/api/users', payload: newUser({ email }) })))
    const statuses = results.map((r) => r.statusCode).sort()
    t.same(statuses, [201, ...Array<number>(19).fill(409)])
    for (const r of results.filter((r) => r.statusCode === 409)) t.equal(r.json().code, 'EMAIL_ALREADY_EXISTS')
  })
})
