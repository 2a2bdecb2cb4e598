// Run in a process of its own by test/integration/tracing.test.ts, with OTEL_EXPORTER_OTLP_ENDPOINT
// as its argument ('' for unset): builds the app, serves a request, closes it, and prints as one
// JSON line every OpenTelemetry module (@opentelemetry/*, @fastify/otel) the process loaded.
import { mkdtempSync, readFileSync } from 'node:fs'
import { createRequire, register } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

// ES modules are only visible to a loader hook, which runs on a thread of its own: it appends
// every URL it resolves to a file, read once the app is closed. CommonJS ones are in require.cache.
const resolvedLog = join(mkdtempSync(join(tmpdir(), 'gatehouse-otel-modules-')), 'resolved')
const hook = `
import { appendFileSync } from 'node:fs'
let log
export function initialize (data) { log = data.log }
export async function resolve (specifier, context, next) {
  const resolved = await next(specifier, context)
  appendFileSync(log, resolved.url + '\\n')
  return resolved
}`
register(`data:text/javascript,${encodeURIComponent(hook)}`, { data: { log: resolvedLog } })

// Imported only now, so that the hook sees everything the app loads.
const { buildApp } = await import('../app.js')
const { testConfig } = await import('./helper.js')
const app = await buildApp(testConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: String(process.argv[2]) }))
await app.inject({ url: '/health/live' })
await app.close()

const loaded = [...readFileSync(resolvedLog, 'utf8').split('\n'), ...Object.keys(createRequire(import.meta.url).cache)]
process.stdout.write(`${JSON.stringify(loaded.filter((m) => /@opentelemetry|@fastify\/otel/.test(m)))}\n`)
