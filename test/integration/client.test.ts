import t from 'tap'
import { createGatehouseClient, type User } from '../../clients/index.js'
import { ADMIN_ENV, newUser } from '../helper.js'
import { startServer } from '../processes.js'

t.test('the generated client, against a real server: signup, login, me, list, update, delete', async (t) => {
  const { base } = await startServer(t, ADMIN_ENV)
  const sent: string[] = []
  const session: { token?: string } = {}
  const gatehouse = createGatehouseClient(base, {
    accessToken: () => session.token,
    fetch: async (request) => {
      sent.push((request as Request).url)
      return await fetch(request)
    }
  })

  const fields = newUser()
  const signup = await gatehouse.POST('/api/users', { body: fields })
  t.equal(signup.response.status, 201)
  const created: User | undefined = signup.data
  t.match(created, { email: fields.email, username: fields.username, role: 'user' })
  t.equal(signup.response.headers.get('location'), `/api/users/${String(created?.id)}`)

  const duplicate = await gatehouse.POST('/api/users', { body: fields })
  t.equal(duplicate.response.status, 409)
  t.equal(duplicate.error?.code, 'EMAIL_ALREADY_EXISTS', 'errors are typed Problems')

  const login = await gatehouse.POST('/api/auth/login', { body: { email: fields.email, password: fields.password } })
  t.equal(login.data?.token_type, 'Bearer')
  session.token = login.data?.access_token

  const me = await gatehouse.GET('/api/auth/me')
  t.equal(me.data?.id, created?.id, 'the access token is sent for the caller')

  const adminLogin = await gatehouse.POST('/api/auth/login', { body: { email: ADMIN_ENV.ADMIN_EMAIL, password: ADMIN_ENV.ADMIN_PASSWORD } })
  const asAdmin = { authorization: `Bearer ${String(adminLogin.data?.access_token)}` }
  const forbidden = await gatehouse.GET('/api/users', { params: { query: { limit: 1 } } })
  t.equal(forbidden.error?.code, 'FORBIDDEN', 'listing is for admins')
  const page = await gatehouse.GET('/api/users', { params: { query: { email: fields.email } }, headers: asAdmin })
  t.same(page.data, { data: [created], next_cursor: null }, 'an explicit authorization header wins')

  const id = String(created?.id)
  const renamed = await gatehouse.PATCH('/api/users/{id}', { params: { path: { id } }, body: { username: `${fields.username}_2` } })
  t.equal(renamed.data?.username, `${fields.username}_2`)

  const deleted = await gatehouse.DELETE('/api/users/{id}', { params: { path: { id } } })
  t.equal(deleted.response.status, 204)
  const gone = await gatehouse.GET('/api/users/{id}', { params: { path: { id } }, headers: asAdmin })
  t.equal(gone.error?.code, 'NOT_FOUND')

  t.ok(sent.every((url) => url.startsWith(`${base}/api/`)), 'every request went to the server, under /api')
})
