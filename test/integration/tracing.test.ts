import { SpanKind, SpanStatusCode } from '@opentelemetry/api'
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-base'
import { once } from 'node:events'
import { createServer, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { ConfigError, loadConfig } from '../../config.js'
import { build, freshDatabaseUrl, newUser, signUp } from '../helper.js'
import { collect, listening, run } from '../processes.js'

/** An app whose spans all land, as each ends, in the returned exporter. */
async function traced (t: Test): Promise<{ app: Awaited<ReturnType<typeof build>>, exporter: InMemorySpanExporter }> {
  const exporter = new InMemorySpanExporter()
  const app = await build(t, { spanExporter: exporter })
  return { app, exporter }
}

const serverSpans = (exporter: InMemorySpanExporter): ReadableSpan[] =>
  exporter.getFinishedSpans().filter((s) => s.kind === SpanKind.SERVER)
const querySpans = (exporter: InMemorySpanExporter): ReadableSpan[] =>
  exporter.getFinishedSpans().filter((s) => s.name === 'db.query')

/** The one server span the exporter holds, and the query spans that are its children. */
function requestTrace (t: Test, exporter: InMemorySpanExporter): { server: ReadableSpan, queries: ReadableSpan[] } {
  const servers = serverSpans(exporter)
  t.equal(servers.length, 1, 'one server span')
  const server = servers[0] as ReadableSpan
  const queries = querySpans(exporter).filter((q) => q.parentSpanContext?.spanId === server.spanContext().spanId)
  t.same(querySpans(exporter).length, queries.length, 'every query span is a child of the request span')
  for (const q of queries) t.equal(q.spanContext().traceId, server.spanContext().traceId, 'in the request\'s trace')
  return { server, queries }
}

t.test('a request: a server span named by its route pattern, its queries as child spans', async (t) => {
  const { app, exporter } = await traced(t)
  const ada = await signUp(app)
  exporter.reset()

  const res = await app.inject({ url: `/api/users/${ada.id}`, headers: ada.auth })
  t.equal(res.statusCode, 200)
  const { server, queries } = requestTrace(t, exporter)
  t.equal(server.name, 'GET /api/users/:id')
  t.match(server.attributes, {
    'http.route': '/api/users/:id',
    'http.request.method': 'GET',
    'http.response.status_code': 200,
    'url.path': `/api/users/${ada.id}`
  })
  t.not(server.status.code, SpanStatusCode.ERROR)
  t.equal(server.resource.attributes['service.name'], 'gatehouse', 'OTEL_SERVICE_NAME defaults to gatehouse')

  t.ok(queries.length >= 1, 'at least one query span')
  for (const q of queries) {
    t.equal(q.kind, SpanKind.CLIENT)
    t.equal(q.attributes['db.system'], 'postgresql')
    const statement = String(q.attributes['db.statement'])
    t.match(statement, /^select .* where "id" = \$1/)
    t.notMatch(statement, new RegExp(`${ada.id}|${ada.email}`), 'parameter values are not recorded')
  }
})

t.test('a request with a body keeps its queries inside the request span', async (t) => {
  const { app, exporter } = await traced(t)
  const fields = newUser()
  const res = await app.inject({ method: 'POST', url: '/api/users', payload: fields })
  t.equal(res.statusCode, 201)
  const { server, queries } = requestTrace(t, exporter)
  t.equal(server.name, 'POST /api/users')
  t.equal(server.attributes['http.response.status_code'], 201)
  const insert = queries.find((q) => String(q.attributes['db.statement']).startsWith('insert into "users"'))
  t.ok(insert, 'the insert is a child of the request span')
  t.notMatch(String(insert?.attributes['db.statement']), new RegExp(`${fields.email}|${fields.username}`), 'no values')
})

t.test('a failed statement: an error span with the SQLSTATE, not the message', async (t) => {
  const { app, exporter } = await traced(t)
  const fields = newUser()
  t.equal((await app.inject({ method: 'POST', url: '/api/users', payload: fields })).statusCode, 201)
  exporter.reset()
  const res = await app.inject({ method: 'POST', url: '/api/users', payload: { ...fields, username: `${fields.username}x` } })
  t.equal(res.statusCode, 409)
  const { queries } = requestTrace(t, exporter)
  const failed = queries.filter((q) => q.status.code === SpanStatusCode.ERROR)
  t.equal(failed.length, 1, 'the insert failed')
  t.equal(failed[0]?.attributes['error.type'], '23505', 'unique_violation')
  t.equal(failed[0]?.status.message, undefined)
  t.same(failed[0]?.events, [], 'no exception event carrying the message')
})

t.test('a W3C traceparent header makes the request part of the caller\'s trace', async (t) => {
  const { app, exporter } = await traced(t)
  const ada = await signUp(app)
  exporter.reset()
  const traceId = '4bf92f3577b34da6a3ce929d0e0e4736'
  const callerSpanId = '00f067aa0ba902b7'
  const res = await app.inject({ url: `/api/users/${ada.id}`, headers: { ...ada.auth, traceparent: `00-${traceId}-${callerSpanId}-01` } })
  t.equal(res.statusCode, 200)
  const { server, queries } = requestTrace(t, exporter)
  t.equal(server.spanContext().traceId, traceId)
  t.equal(server.parentSpanContext?.spanId, callerSpanId)
  t.equal(server.parentSpanContext?.isRemote, true)
  t.ok(queries.length >= 1)
})

t.test('unmatched URLs are named by method alone; probes and the scrape are not traced', async (t) => {
  const { app, exporter } = await traced(t)
  t.equal((await app.inject({ url: '/no/such/page/12345?q=1' })).statusCode, 404)
  const [notFound] = serverSpans(exporter)
  t.equal(notFound?.name, 'GET', 'no raw URL in the span name')
  t.equal(notFound?.attributes['http.route'], undefined)
  t.equal(notFound?.attributes['http.response.status_code'], 404)
  t.equal(notFound?.attributes['url.path'], '/no/such/page/12345', 'the path without its query')

  exporter.reset()
  for (const url of ['/health/live', '/health/ready', '/metrics']) t.equal((await app.inject({ url })).statusCode, 200, url)
  t.same(exporter.getFinishedSpans().map((s) => s.name), [], 'no spans, not even for the readiness query')
})

/** A stand-in OTLP/HTTP collector that answers `status` and keeps what it is sent. */
async function collector (t: Test, status = 200): Promise<{ endpoint: string, received: Array<{ url: string, token: unknown, body: string }> }> {
  const received: Array<{ url: string, token: unknown, body: string }> = []
  const server = createServer((req: IncomingMessage, res) => {
    let body = ''
    req.on('data', (d: Buffer) => { body += d.toString() })
    req.on('end', () => {
      received.push({ url: String(req.url), token: req.headers['x-collector-token'], body })
      res.writeHead(status, { 'content-type': 'application/json' }).end('{}')
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => { server.close() })
  return { endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}/otlp`, received }
}

t.test('with OTEL_EXPORTER_OTLP_ENDPOINT set, spans go there over OTLP/HTTP', async (t) => {
  t.test('graceful shutdown exports the last spans, under OTEL_SERVICE_NAME', async (t) => {
    const { endpoint, received } = await collector(t)
    const url = await freshDatabaseUrl(t)
    const child = run('server.ts', {
      PORT: '0',
      HOST: '127.0.0.1',
      PGLITE_DATA_DIR: 'memory://',
      JWT_SECRET: 'process-test-secret-at-least-32-chars',
      OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
      OTEL_SERVICE_NAME: 'gatehouse-test',
      OTEL_EXPORTER_OTLP_HEADERS: 'x-collector-token=s3cret',
      ...(url !== undefined && { DATABASE_URL: url })
    })
    const exited = collect(child)
    t.teardown(() => { child.kill('SIGKILL') })
    const base = await listening(child)
    const res = await fetch(`${base}/api/users`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(newUser()) })
    t.equal(res.status, 201)
    t.same(received, [], 'batched: nothing sent yet')
    child.kill('SIGTERM')
    t.equal((await exited).code, 0)

    t.equal(received.length, 1, 'one batch, sent on shutdown')
    t.equal(received[0]?.url, '/otlp/v1/traces', 'the signal path is appended to the endpoint')
    t.equal(received[0]?.token, 's3cret', 'the SDK\'s own OTEL_EXPORTER_OTLP_HEADERS still applies')
    const sent = JSON.parse(String(received[0]?.body)) as { resourceSpans: Array<{ resource: { attributes: Array<{ key: string, value: { stringValue?: string } }> }, scopeSpans: Array<{ spans: Array<{ name: string }> }> }> }
    const [resourceSpans] = sent.resourceSpans
    t.same(resourceSpans?.resource.attributes.find((a) => a.key === 'service.name')?.value, { stringValue: 'gatehouse-test' })
    const names = resourceSpans?.scopeSpans.flatMap((s) => s.spans.map((span) => span.name))
    t.ok(names?.includes('POST /api/users'), 'the request span')
    t.ok(names?.includes('db.query'), 'its query spans')
  })

  t.test('a collector that refuses the last spans is logged, and does not fail the shutdown', async (t) => {
    const { endpoint, received } = await collector(t, 400)
    const lines: string[] = []
    const app = await build(t, { env: { OTEL_EXPORTER_OTLP_ENDPOINT: `${endpoint}/`, LOG_LEVEL: 'warn' }, logStream: { write: (line) => { lines.push(line) } } })
    t.equal((await app.inject({ method: 'POST', url: '/api/users', payload: newUser() })).statusCode, 201)
    await app.close()
    t.equal(received[0]?.url, '/otlp/v1/traces', 'a trailing slash on the endpoint is fine')
    t.match(lines.join(''), /could not export the last spans/)
  })

  t.test('a collector that refuses spans while serving: the SDK\'s complaint reaches the log', async (t) => {
    const { endpoint, received } = await collector(t, 400)
    const lines: string[] = []
    // A batch every 50 ms rather than every 5 s; the SDK reads this variable itself, at start.
    process.env.OTEL_BSP_SCHEDULE_DELAY = '50'
    const app = await build(t, { env: { OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, LOG_LEVEL: 'warn' }, logStream: { write: (line) => { lines.push(line) } } })
    delete process.env.OTEL_BSP_SCHEDULE_DELAY
    t.equal((await app.inject({ method: 'POST', url: '/api/users', payload: newUser() })).statusCode, 201)
    while (received.length === 0 || !lines.join('').includes('OpenTelemetry: ')) await new Promise((resolve) => setTimeout(resolve, 20))
    t.match(lines.join(''), /"level":40.*"msg":"OpenTelemetry: .*Bad Request/, 'a warning naming the problem')
  })
})

t.test('without OTEL_EXPORTER_OTLP_ENDPOINT nothing of the tracing stack is loaded', async (t) => {
  // In a fresh process each, since this one has loaded them all by now.
  const loadedWith = async (endpoint: string): Promise<Array<{ module: string, from: string[] }>> => {
    const { code, stdout, stderr } = await collect(run('test/otel-modules.ts', {}, [endpoint]))
    t.equal(code, 0, stderr)
    return JSON.parse(stdout) as Array<{ module: string, from: string[] }>
  }
  const off = await loadedWith('')
  t.same(off.filter(({ module }) => !module.includes('/node_modules/@opentelemetry/api/')), [], 'unset: nothing but the API')
  // prom-client requires the API (a no-op until something registers with it) for its exemplars,
  // tracing or not; the check is that nothing of ours loads any of it.
  const importers = off.flatMap(({ from }) => from).filter((m) => !m.includes('/node_modules/@opentelemetry/api/'))
  t.ok(importers.length > 0, 'the API is loaded by someone')
  t.same(importers.filter((m) => !m.includes('/node_modules/prom-client/')), [], 'by prom-client alone')

  // The control: the same check sees the tracing stack when tracing is on, ES modules and CommonJS.
  const on = await loadedWith('http://127.0.0.1:4318')
  t.ok(on.some(({ module }) => module.startsWith('file://') && module.includes('/@fastify/otel/')), '@fastify/otel, imported')
  t.ok(on.some(({ module }) => module.startsWith('/') && module.includes('/@opentelemetry/sdk-trace-base/')), 'the SDK, required')
  t.ok(on.some(({ from }) => from.some((m) => m.endsWith('/plugins/tracing.ts'))), 'importers are seen')
})

t.test('an endpoint that is not an http(s) URL stops start-up', async (t) => {
  // A bare host:port (gRPC habit) would otherwise fail only at the first export, silently.
  try {
    loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'otel-collector:4317' })
    t.fail('expected a ConfigError')
  } catch (err) {
    t.ok(err instanceof ConfigError)
    t.same((err as ConfigError).problems, ['OTEL_EXPORTER_OTLP_ENDPOINT: must match ^https?:// (got "otel-collector:4317")'])
  }
})
