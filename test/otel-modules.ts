// Run in a process of its own by test/integration/tracing.test.ts, with OTEL_EXPORTER_OTLP_ENDPOINT
// as its argument ('' for unset): builds the app, serves a request, closes it, and prints as one
// JSON line every OpenTelemetry module (@opentelemetry/*, @fastify/otel) the process loaded, each
// with the modules that imported or required it.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createRequire, register } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

// What the ESM loader resolves is only visible to a loader hook, which runs on a thread of its own:
// it appends each URL and its importer to a file, read once the app is closed. What was required
// is in require.cache.
const dir = mkdtempSync(join(tmpdir(), 'gatehouse-otel-modules-'))
const resolvedLog = join(dir, 'resolved')
const hook = `
import { appendFileSync } from 'node:fs'
let log
export function initialize (data) { log = data.log }
export async function resolve (specifier, context, next) {
  const resolved = await next(specifier, context)
  appendFileSync(log, resolved.url + ' ' + context.parentURL + '\\n')
  return resolved
}`
register(`data:text/javascript,${encodeURIComponent(hook)}`, { data: { log: resolvedLog } })

// Imported only now, so that the hook sees everything the app loads.
const { buildApp } = await import('../app.js')
const { testConfig } = await import('./helper.js')
const app = await buildApp(testConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: String(process.argv[2]) }))
await app.inject({ url: '/health/live' })
await app.close()

const cached = Object.values(createRequire(import.meta.url).cache) as NodeJS.Module[]
const loaded = [
  ...readFileSync(resolvedLog, 'utf8').split('\n').map((line) => line.split(' ')).map(([module, from]) => ({ module, from: [from] })),
  ...cached.map(({ filename }) => ({ module: filename, from: cached.filter((m) => m.children.some((c) => c.filename === filename)).map((m) => m.filename) }))
]
rmSync(dir, { recursive: true })
process.stdout.write(`${JSON.stringify(loaded.filter(({ module }) => /@opentelemetry|@fastify\/otel/.test(String(module))))}\n`)
