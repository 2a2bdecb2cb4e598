import { Validator } from '@seriousme/openapi-schema-validator'
import t from 'tap'
import { build } from '../helper.js'

interface Operation { operationId?: string, security?: unknown[], requestBody?: unknown, parameters?: unknown[], responses: Record<string, { content?: Record<string, unknown> }> }

t.test('the OpenAPI document', async (t) => {
  const app = await build(t)
  const res = await app.inject({ url: '/openapi.json' })
  t.equal(res.statusCode, 200)
  const doc = res.json()

  t.test('is valid OpenAPI 3.1', async (t) => {
    t.match(doc.openapi, /^3\.1\./)
    const result = await new Validator().validate(doc)
    t.same(result.errors, undefined, 'no validation errors')
    t.equal(result.valid, true)
  })

  const operations: Array<[string, Operation]> = Object.entries(doc.paths as Record<string, Record<string, Operation>>)
    .flatMap(([path, methods]) => Object.entries(methods).map(([method, op]): [string, Operation] => [`${method.toUpperCase()} ${path}`, op]))

  t.test('lists every route, and nothing internal', async (t) => {
    t.same(operations.map(([name]) => name).sort(), [
      'DELETE /api/auth/sessions/{id}', 'DELETE /api/users/{id}', 'GET /.well-known/jwks.json', 'GET /api/auth/me',
      'GET /api/auth/sessions', 'GET /api/users', 'GET /api/users/export', 'GET /api/users/{id}', 'GET /health',
      'GET /health/live', 'GET /health/ready', 'PATCH /api/users/{id}', 'POST /api/auth/login', 'POST /api/auth/logout',
      'POST /api/auth/logout-all', 'POST /api/auth/refresh', 'POST /api/users', 'POST /api/users/lookup'
    ])
  })

  t.test('every operation has a unique operationId and problem+json error responses', async (t) => {
    const ids = operations.map(([, op]) => op.operationId)
    t.equal(new Set(ids).size, ids.length, 'operationIds are unique')
    for (const [name, op] of operations) {
      t.type(op.operationId, 'string', `${name} has an operationId`)
      // Probes answer their own JSON (readiness: 503 with the failed checks), never problem+json.
      if (name.startsWith('GET /health')) continue
      // 400 exactly where there is input to refuse: a body (any POST, PATCH or DELETE is sent one
      // and parses it, schema or not: malformed JSON is a 400 there too), or parameters.
      const takesInput = op.requestBody !== undefined || (op.parameters?.length ?? 0) > 0 || /^(POST|PATCH|DELETE) /.test(name)
      t.equal(op.responses['400'] !== undefined, takesInput, `${name} documents 400 if and only if it takes input`)
      for (const status of [...(takesInput ? ['400'] : []), '500', '503']) {
        t.ok(op.responses[status]?.content?.['application/problem+json'], `${name} documents ${status} as problem+json`)
      }
    }
  })

  t.test('protected operations declare bearer security and a 401', async (t) => {
    t.same(doc.components.securitySchemes.bearerAuth, { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: doc.components.securitySchemes.bearerAuth.description })
    const open = new Set(['POST /api/users', 'POST /api/auth/login', 'POST /api/auth/refresh', 'POST /api/auth/logout', 'GET /.well-known/jwks.json', 'GET /health', 'GET /health/live', 'GET /health/ready'])
    for (const [name, op] of operations) {
      if (open.has(name)) {
        t.same(op.security, [], `${name} is open, and says so`)
      } else {
        t.same(op.security, [{ bearerAuth: [] }], `${name} needs a bearer token`)
        t.ok(op.responses['401'], `${name} documents 401`)
      }
    }
  })

  t.test('User and Problem are named components, and User has no password field', async (t) => {
    const { User, Problem } = doc.components.schemas
    t.same(Object.keys(User.properties).sort(), ['created_at', 'email', 'id', 'role', 'updated_at', 'username'])
    t.ok(Problem.properties.code)
    t.notMatch(JSON.stringify(User.properties), /password|hash/)
  })

  t.test('/docs serves the API reference page from this service alone', async (t) => {
    const page = await app.inject({ url: '/docs' })
    const html = page.statusCode === 302 ? await app.inject({ url: page.headers.location as string }) : page
    t.equal(html.statusCode, 200)
    t.match(html.headers['content-type'], /text\/html/)
    t.notMatch(html.body, /https?:\/\/(?!localhost)[^"' ]*\.(js|css)/, 'no script or style from another host')
  })
})
