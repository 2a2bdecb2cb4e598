import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import type { IncomingMessage } from 'node:http'
import { pino } from 'pino'
import t from 'tap'
import { lazyChildLoggerFactory } from '../../request-logger.js'

/** A pino logger as the app makes it (level, wildcard redaction), its lines collected, its children counted. */
function parentLogger (level: string): { logger: FastifyBaseLogger, lines: Array<Record<string, unknown>>, children: () => number } {
  const lines: Array<Record<string, unknown>> = []
  const logger = pino({ level, redact: { paths: ['*.password'], censor: '[redacted]' } }, { write: (line: string) => { lines.push(JSON.parse(line)) } })
  let children = 0
  const child = logger.child
  // Children inherit this property (pino makes them with Object.create), so `this` must be honoured.
  logger.child = function (this: typeof logger, ...args: Parameters<typeof child>) { children++; return child.apply(this, args) } as typeof child
  return { logger: logger as unknown as FastifyBaseLogger, lines, children: () => children }
}

const make = (logger: FastifyBaseLogger, options = {}): FastifyBaseLogger =>
  lazyChildLoggerFactory.call({} as unknown as FastifyInstance, logger, { reqId: 'req-1' }, options, {} as unknown as IncomingMessage)

t.test('nothing logged at a disabled level: no line, and no child made', async (t) => {
  const { logger, lines, children } = parentLogger('warn')
  const log = make(logger)
  log.info('incoming request')
  log.debug({ any: 'thing' }, 'details')
  log.trace('trace')
  t.same(lines, [])
  t.equal(children(), 0)
  t.equal(log.level, 'warn', 'reports the level it logs at')
})

t.test('a line at an enabled level carries the request id, redaction still applies, one child is made', async (t) => {
  const { logger, lines, children } = parentLogger('warn')
  const log = make(logger)
  log.warn({ user: { password: 'hunter2-secret' } }, 'first')
  log.error(new Error('boom'), 'second')
  log.fatal('third')
  t.match(lines, [
    { level: 40, reqId: 'req-1', msg: 'first', user: { password: '[redacted]' } },
    { level: 50, reqId: 'req-1', msg: 'second', err: { message: 'boom' } },
    { level: 60, reqId: 'req-1', msg: 'third' }
  ])
  t.notMatch(JSON.stringify(lines), /hunter2/)
  t.equal(children(), 1)
})

t.test('at info level every method logs, with the request id', async (t) => {
  const { logger, lines } = parentLogger('trace')
  const log = make(logger)
  log.info('i')
  log.debug('d')
  log.trace('t')
  t.match(lines, [{ msg: 'i', reqId: 'req-1' }, { msg: 'd', reqId: 'req-1' }, { msg: 't', reqId: 'req-1' }])
  log.silent('nothing')
  t.equal(lines.length, 3)
})

t.test('a child of the request logger keeps both bindings; a level set on it stays on it', async (t) => {
  const { logger, lines } = parentLogger('warn')
  const log = make(logger)
  log.child({ step: 'hash' }).warn('slow')
  t.match(lines, [{ reqId: 'req-1', step: 'hash', msg: 'slow' }])
  log.level = 'debug'
  log.debug('now on')
  t.equal(log.level, 'debug')
  t.equal(logger.level, 'warn', 'the app logger is unchanged')
  t.match(lines[1], { reqId: 'req-1', msg: 'now on' })
})

t.test('route-level options, or a logger that cannot tell its levels, get the logger\'s own child at once', async (t) => {
  const { logger, lines, children } = parentLogger('warn')
  const log = make(logger, { level: 'info' })
  t.equal(children(), 1)
  log.info('route at info')
  t.match(lines, [{ reqId: 'req-1', msg: 'route at info' }])

  const made: unknown[] = []
  const plain = { level: 'info', child: (bindings: unknown) => { made.push(bindings); return plain } } as unknown as FastifyBaseLogger
  t.equal(make(plain), plain)
  t.same(made, [{ reqId: 'req-1' }])
})
