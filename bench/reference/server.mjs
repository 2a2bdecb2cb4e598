// The bare reference Gatehouse is measured against: plain Fastify and node-postgres, no plugins,
// no auth, no logging; one prepared statement. Same pool size as Gatehouse (DB_POOL_SIZE).
import Fastify from 'fastify'
import pg from 'pg'

const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: Number(process.env.DB_POOL_SIZE ?? 10) })
const app = Fastify({ logger: false })

const User = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    email: { type: 'string' },
    username: { type: 'string' },
    role: { type: 'string' },
    created_at: { type: 'string', format: 'date-time' },
    updated_at: { type: 'string', format: 'date-time' }
  }
}

app.get('/health', { schema: { response: { 200: { type: 'object', properties: { status: { type: 'string' } } } } } }, async () => ({ status: 'ok' }))

app.get('/users/:id', { schema: { response: { 200: User } } }, async (request, reply) => {
  const { rows } = await pool.query({
    // Named, so node-postgres prepares it once per connection and then only binds and executes.
    name: 'get-user',
    text: 'select id, email, username, role, created_at, updated_at from users where id = $1',
    values: [request.params.id]
  })
  if (rows.length === 0) return await reply.code(404).send()
  return rows[0]
})

const close = () => { app.close().then(() => pool.end()).then(() => process.exit(0), () => process.exit(1)) }
process.on('SIGTERM', close)
process.on('SIGINT', close)

await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT ?? 3100) })
