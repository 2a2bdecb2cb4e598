import { buildApp } from './app.js'
import { ConfigError, loadConfig } from './config.js'
import { createShutdown } from './shutdown.js'

// How long in-flight requests get to finish after a shutdown signal before the process gives up.
const SHUTDOWN_DEADLINE_MS = 10_000

async function main (): Promise<void> {
  const { config, warnings } = loadConfig()
  const app = await buildApp(config)
  for (const warning of warnings) app.log.warn(warning)

  const shutdown = createShutdown({ close: async () => { await app.close() }, exit: (code) => process.exit(code), log: app.log, deadlineMs: SHUTDOWN_DEADLINE_MS })
  process.on('SIGTERM', shutdown)
  process.on('SIGINT', shutdown)

  await app.listen({ port: config.port, host: config.host })
}

main().catch((err: unknown) => {
  // A ConfigError's message already lists each bad variable; anything else needs its stack.
  process.stderr.write(`gatehouse failed to start: ${err instanceof ConfigError ? err.message : String((err as Error).stack)}\n`)
  process.exit(1)
})
