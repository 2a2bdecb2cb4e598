import { buildApp } from './app.js'
import { ConfigError, loadConfig } from './config.js'

// How long in-flight requests get to finish after a shutdown signal before the process gives up.
const SHUTDOWN_DEADLINE_MS = 10_000

async function main (): Promise<void> {
  let loaded
  try {
    loaded = loadConfig()
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    process.stderr.write(`${err.message}\n`)
    process.exit(1)
  }
  const { config, warnings } = loaded
  const app = await buildApp(config)
  for (const warning of warnings) app.log.warn(warning)

  let closing = false
  const shutdown = (signal: NodeJS.Signals): void => {
    if (closing) {
      app.log.warn({ signal }, 'second signal: exiting now')
      process.exit(1)
    }
    closing = true
    app.log.info({ signal }, 'shutting down')
    setTimeout(() => {
      app.log.error('shutdown deadline passed: exiting')
      process.exit(1)
    }, SHUTDOWN_DEADLINE_MS).unref()
    app.close().then(() => process.exit(0), (err: unknown) => {
      app.log.error({ err }, 'shutdown failed')
      process.exit(1)
    })
  }
  process.on('SIGTERM', shutdown)
  process.on('SIGINT', shutdown)

  await app.listen({ port: config.port, host: config.host })
}

main().catch((err: unknown) => {
  process.stderr.write(`gatehouse failed to start: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
  process.exit(1)
})
