import t from 'tap'
import { ADMIN, ADMIN_ENV, assertProblem, build, loginToken, newUser, signUp } from '../helper.js'

const MISSING_ID = '01a21226-ca21-7191-8cfb-01f1e5441dc5'

t.test('users API', async (t) => {
  const app = await build(t, { env: ADMIN_ENV })
  const admin = { authorization: `Bearer ${await loginToken(app, ADMIN.email, ADMIN.password)}` }

  t.test('GET /api/users/:id', async (t) => {
    const ada = await signUp(app)
    const bob = await signUp(app)

    t.test('a user reads their own record', async (t) => {
      const res = await app.inject({ url: `/api/users/${ada.id}`, headers: ada.auth })
      t.equal(res.statusCode, 200)
      t.match(res.json(), { id: ada.id, email: ada.email, username: ada.username, role: 'user' })
      t.notMatch(res.body, /password/)
    })
    t.test('a user cannot read another user: 403', async (t) => {
      assertProblem(t, await app.inject({ url: `/api/users/${bob.id}`, headers: ada.auth }), 403, 'FORBIDDEN')
    })
    t.test('a user asking for an id that does not exist gets 403, not 404 (no probing for ids)', async (t) => {
      assertProblem(t, await app.inject({ url: `/api/users/${MISSING_ID}`, headers: ada.auth }), 403, 'FORBIDDEN')
    })
    t.test('an admin reads anyone', async (t) => {
      const res = await app.inject({ url: `/api/users/${bob.id}`, headers: admin })
      t.equal(res.statusCode, 200)
      t.equal(res.json().id, bob.id)
    })
    t.test('an admin asking for a missing user gets 404', async (t) => {
      assertProblem(t, await app.inject({ url: `/api/users/${MISSING_ID}`, headers: admin }), 404, 'NOT_FOUND')
    })
    t.test('a malformed id is 400 naming the id', async (t) => {
      const body = assertProblem(t, await app.inject({ url: '/api/users/not-a-uuid', headers: admin }), 400, 'VALIDATION_FAILED')
      t.match(body.errors, [{ in: 'params', field: 'id' }])
      assertProblem(t, await app.inject({ url: `/api/users/urn:uuid:${MISSING_ID}`, headers: admin }), 400, 'VALIDATION_FAILED')
    })
    t.test('anonymous is 401 with WWW-Authenticate: Bearer', async (t) => {
      const res = await app.inject({ url: `/api/users/${ada.id}` })
      assertProblem(t, res, 401, 'UNAUTHORIZED')
      t.match(res.headers['www-authenticate'], /^Bearer/)
    })
  })

  t.test('GET /api/users (list)', async (t) => {
    t.test('is for admins only', async (t) => {
      const ada = await signUp(app)
      assertProblem(t, await app.inject({ url: '/api/users', headers: ada.auth }), 403, 'FORBIDDEN')
      assertProblem(t, await app.inject({ url: '/api/users' }), 401, 'UNAUTHORIZED')
    })

    t.test('pages newest first with an opaque cursor, visiting every user exactly once', async (t) => {
      for (let i = 0; i < 7; i++) await signUp(app)
      const all = await app.inject({ url: '/api/users?limit=100', headers: admin })
      t.equal(all.statusCode, 200)
      const expected = all.json().data as Array<{ id: string, created_at: string }>
      t.equal(all.json().next_cursor, null, 'one page holds them all')
      const sorted = [...expected].sort((a, b) => b.created_at.localeCompare(a.created_at) || b.id.localeCompare(a.id))
      t.same(expected.map((u) => u.id), sorted.map((u) => u.id), 'newest first')

      const seen: string[] = []
      let cursor: string | null = null
      let pages = 0
      do {
        const query: string = cursor === null ? '?limit=3' : `?limit=3&cursor=${cursor}`
        const res = await app.inject({ url: `/api/users${query}`, headers: admin })
        t.equal(res.statusCode, 200)
        const page = res.json() as { data: Array<{ id: string }>, next_cursor: string | null }
        t.ok(page.data.length <= 3)
        seen.push(...page.data.map((u) => u.id))
        cursor = page.next_cursor
        pages++
      } while (cursor !== null && pages < 100)
      t.same(seen, expected.map((u) => u.id), 'the pages together are the full list, in order, without repeats')
      t.equal(pages, Math.ceil(expected.length / 3))
    })

    t.test('limit defaults to 20 and must be 1-100', async (t) => {
      for (let i = 0; i < 21; i++) await app.inject({ method: 'POST', url: '/api/users', payload: newUser() })
      const res = await app.inject({ url: '/api/users', headers: admin })
      t.equal(res.json().data.length, 20)
      t.type(res.json().next_cursor, 'string')
      for (const limit of ['0', '101', 'abc', '-1', '1.5']) {
        assertProblem(t, await app.inject({ url: `/api/users?limit=${limit}`, headers: admin }), 400, 'VALIDATION_FAILED')
      }
    })

    t.test('a cursor this service did not issue is 400 INVALID_CURSOR', async (t) => {
      for (const cursor of ['garbage', Buffer.from('["x","y"]').toString('base64url'), Buffer.from('{}').toString('base64url')]) {
        assertProblem(t, await app.inject({ url: `/api/users?cursor=${cursor}`, headers: admin }), 400, 'INVALID_CURSOR')
      }
    })
  })

  t.test('PATCH /api/users/:id', async (t) => {
    t.test('a user changes their username without re-authenticating', async (t) => {
      const ada = await signUp(app)
      const res = await app.inject({ method: 'PATCH', url: `/api/users/${ada.id}`, headers: ada.auth, payload: { username: `${ada.username}_x` } })
      t.equal(res.statusCode, 200)
      t.equal(res.json().username, `${ada.username}_x`)
      t.ok(res.json().updated_at > res.json().created_at, 'updated_at moves')
    })

    t.test('changing one\'s own email or password needs the current password', async (t) => {
      const ada = await signUp(app)
      const url = `/api/users/${ada.id}`
      assertProblem(t, await app.inject({ method: 'PATCH', url, headers: ada.auth, payload: { password: 'a-new-password' } }), 400, 'CURRENT_PASSWORD_REQUIRED')
      assertProblem(t, await app.inject({ method: 'PATCH', url, headers: ada.auth, payload: { email: 'new@example.com' } }), 400, 'CURRENT_PASSWORD_REQUIRED')
      assertProblem(t, await app.inject({ method: 'PATCH', url, headers: ada.auth, payload: { password: 'a-new-password', current_password: 'wrong-password' } }), 403, 'INVALID_CURRENT_PASSWORD')

      const ok = await app.inject({ method: 'PATCH', url, headers: ada.auth, payload: { password: 'a-new-password', current_password: ada.password } })
      t.equal(ok.statusCode, 200)
      t.notMatch(ok.body, /password/)
      assertProblem(t, await app.inject({ method: 'POST', url: '/api/auth/login', payload: { email: ada.email, password: ada.password } }), 401, 'INVALID_CREDENTIALS')
      t.type(await loginToken(app, ada.email, 'a-new-password'), 'string', 'the new password works')

      const email = newUser().email.toUpperCase()
      const moved = await app.inject({ method: 'PATCH', url, headers: ada.auth, payload: { email, current_password: 'a-new-password' } })
      t.equal(moved.json().email, email.toLowerCase(), 'the new email is normalised')
    })

    t.test('only an admin may change a role', async (t) => {
      const ada = await signUp(app)
      const url = `/api/users/${ada.id}`
      assertProblem(t, await app.inject({ method: 'PATCH', url, headers: ada.auth, payload: { role: 'admin' } }), 403, 'FORBIDDEN')
      const promoted = await app.inject({ method: 'PATCH', url, headers: admin, payload: { role: 'admin' } })
      t.equal(promoted.json().role, 'admin')
      const fresh = { authorization: `Bearer ${await loginToken(app, ada.email, ada.password)}` }
      t.equal((await app.inject({ url: '/api/users', headers: fresh })).statusCode, 200, 'a new token carries the new role')
    })

    t.test('an admin changes another user\'s email and password without their password', async (t) => {
      const ada = await signUp(app)
      const res = await app.inject({ method: 'PATCH', url: `/api/users/${ada.id}`, headers: admin, payload: { password: 'set-by-admin-1' } })
      t.equal(res.statusCode, 200)
      t.type(await loginToken(app, ada.email, 'set-by-admin-1'), 'string')
    })

    t.test('a user cannot change another user', async (t) => {
      const ada = await signUp(app)
      const bob = await signUp(app)
      assertProblem(t, await app.inject({ method: 'PATCH', url: `/api/users/${bob.id}`, headers: ada.auth, payload: { username: 'stolen' } }), 403, 'FORBIDDEN')
    })

    t.test('conflicts, unknown fields, empty bodies and missing users are refused', async (t) => {
      const ada = await signUp(app)
      const bob = await signUp(app)
      const url = `/api/users/${ada.id}`
      assertProblem(t, await app.inject({ method: 'PATCH', url, headers: ada.auth, payload: { username: bob.username.toUpperCase() } }), 409, 'USERNAME_ALREADY_EXISTS')
      assertProblem(t, await app.inject({ method: 'PATCH', url, headers: admin, payload: { email: bob.email } }), 409, 'EMAIL_ALREADY_EXISTS')
      assertProblem(t, await app.inject({ method: 'PATCH', url, headers: ada.auth, payload: { id: MISSING_ID } }), 400, 'VALIDATION_FAILED')
      assertProblem(t, await app.inject({ method: 'PATCH', url, headers: ada.auth, payload: {} }), 400, 'VALIDATION_FAILED')
      assertProblem(t, await app.inject({ method: 'PATCH', url, headers: admin, payload: { role: 'root' } }), 400, 'VALIDATION_FAILED')
      assertProblem(t, await app.inject({ method: 'PATCH', url: `/api/users/${MISSING_ID}`, headers: admin, payload: { username: 'ghost' } }), 404, 'NOT_FOUND')
    })
  })

  t.test('DELETE /api/users/:id', async (t) => {
    t.test('a user deletes themselves: 204, then their token no longer works for /me', async (t) => {
      const ada = await signUp(app)
      const res = await app.inject({ method: 'DELETE', url: `/api/users/${ada.id}`, headers: ada.auth })
      t.equal(res.statusCode, 204)
      t.equal(res.body, '')
      assertProblem(t, await app.inject({ url: '/api/auth/me', headers: ada.auth }), 401, 'UNAUTHORIZED')
      assertProblem(t, await app.inject({ method: 'POST', url: '/api/auth/login', payload: { email: ada.email, password: ada.password } }), 401, 'INVALID_CREDENTIALS')
    })
    t.test('a user cannot delete another user', async (t) => {
      const ada = await signUp(app)
      const bob = await signUp(app)
      assertProblem(t, await app.inject({ method: 'DELETE', url: `/api/users/${bob.id}`, headers: ada.auth }), 403, 'FORBIDDEN')
      t.equal((await app.inject({ url: `/api/users/${bob.id}`, headers: bob.auth })).statusCode, 200, 'bob is still there')
    })
    t.test('an admin deletes anyone; a second delete is 404', async (t) => {
      const bob = await signUp(app)
      t.equal((await app.inject({ method: 'DELETE', url: `/api/users/${bob.id}`, headers: admin })).statusCode, 204)
      assertProblem(t, await app.inject({ method: 'DELETE', url: `/api/users/${bob.id}`, headers: admin }), 404, 'NOT_FOUND')
    })
    t.test('anonymous is 401', async (t) => {
      assertProblem(t, await app.inject({ method: 'DELETE', url: `/api/users/${MISSING_ID}` }), 401, 'UNAUTHORIZED')
    })
  })
})
