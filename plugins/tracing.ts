import { FastifyOtelInstrumentation } from '@fastify/otel'
import { context, diag, DiagLogLevel, propagation, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { W3CTraceContextPropagator } from '@opentelemetry/core'
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http'
import { defaultResource, resourceFromAttributes } from '@opentelemetry/resources'
import { BasicTracerProvider, BatchSpanProcessor, SimpleSpanProcessor, type SpanExporter } from '@opentelemetry/sdk-trace-base'
import fp from 'fastify-plugin'
import type { QueryObserver } from '../db/query-observer.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Only present when tracing is on: app.ts loads this plugin only then. */
    tracing?: { observeQuery: QueryObserver }
  }
}

export interface TracingOptions {
  serviceName: string
  /** The OTLP/HTTP endpoint (spans batched), or an exporter that gets each span as it ends (the tests'). */
  exportTo: string | SpanExporter
}

// The context manager and the propagator are process-wide by nature; several apps in one process
// (as in the tests) share them, so they are installed once.
let globalsInstalled = false

/**
 * OpenTelemetry tracing: a server span per request (@fastify/otel, which works through Fastify
 * hooks rather than by patching modules, so it works under ESM), named by method and route
 * pattern, joining the caller's trace when a W3C `traceparent` header comes with the request;
 * and `observeQuery`, which the db plugin uses to make a child span of each database statement.
 */
export default fp<TracingOptions>(async function tracing (app, { serviceName, exportTo }) {
  if (!globalsInstalled) {
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
    propagation.setGlobalPropagator(new W3CTraceContextPropagator())
    globalsInstalled = true
  }
  // The SDK reports its own trouble (a collector that refuses spans, say) through diag, which
  // otherwise goes nowhere. Also process-wide: the app that started tracing last gets it.
  const toLog = (message: string, ...args: unknown[]): void => { app.log.warn({ args }, `OpenTelemetry: ${message}`) }
  diag.setLogger({ error: toLog, warn: toLog, info: toLog, debug: toLog, verbose: toLog }, { logLevel: DiagLogLevel.WARN, suppressOverrideMessage: true })

  const provider = new BasicTracerProvider({
    resource: defaultResource().merge(resourceFromAttributes({ 'service.name': serviceName })),
    spanProcessors: [typeof exportTo === 'string'
      ? new BatchSpanProcessor(new OTLPTraceExporter({ url: new URL('v1/traces', exportTo.endsWith('/') ? exportTo : `${exportTo}/`).href }))
      : new SimpleSpanProcessor(exportTo)]
  })
  // Last of the onClose hooks (this plugin is registered first), so the spans of requests that
  // finished during the drain are exported too.
  app.addHook('onClose', async () => {
    try {
      await provider.shutdown()
    } catch (err) {
      app.log.warn({ err }, 'could not export the last spans')
    }
  })

  // Before @fastify/otel's own onRoute hook, which reads it: probes and the scrape, already left
  // out of the metrics because they come every few seconds, are left out of the traces too.
  app.addHook('onRoute', (route) => {
    if (route.config?.skipMetrics === true) route.config = { ...route.config, otel: false }
  })
  const instrumentation = new FastifyOtelInstrumentation({
    // A span for each hook and handler would be a dozen near-empty spans per request; the request
    // span and its database statements are what a trace of this service needs.
    instrumentHooks: false,
    instrumentHandler: false,
    requestHook: (span, request) => {
      // By route pattern, never the raw URL, so that there are few distinct span names.
      const route = request.routeOptions.url
      span.updateName(route === undefined ? request.method : `${request.method} ${route}`)
      // @fastify/otel records the query string in url.path, which is meant to be the path alone.
      span.setAttribute('url.path', request.url.replace(/\?.*/s, ''))
    }
  })
  instrumentation.setTracerProvider(provider)
  await app.register(instrumentation.plugin())

  const tracer = provider.getTracer('gatehouse')
  const noSpan = (): void => {}
  const observeQuery: QueryObserver = (sql) => {
    // Only inside a traced request: alone, a probe's `select 1` or a start-up migration is noise.
    if (trace.getActiveSpan() === undefined) return noSpan
    const span = tracer.startSpan('db.query', { kind: SpanKind.CLIENT, attributes: { 'db.system': 'postgresql', 'db.statement': sql } })
    return (error) => {
      if (error !== undefined) {
        // The SQLSTATE, not the message: PostgreSQL quotes values in some messages, and the
        // statement is recorded without its parameters for the same reason.
        const { code } = Object(error) as { code?: string }
        span.setAttributes({ 'error.type': code })
        span.setStatus({ code: SpanStatusCode.ERROR })
      }
      span.end()
    }
  }
  app.decorate('tracing', { observeQuery })
}, { name: 'tracing' })
