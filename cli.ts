#!/usr/bin/env node
import { createInterface } from 'node:readline'
import { ConfigError, loadConfig } from './config.js'
import { openDatabase } from './db/connection.js'
import { migrateToLatest } from './db/migrator.js'
import { createUserRepository } from './db/user-repository.js'
import { createArgon2Hasher } from './services/password-hasher.js'
import { createUserService } from './services/user-service.js'

const USAGE = `usage: gatehouse <command>
  migrate                 apply pending database migrations
  create-admin <email>    create an admin account unless one has that email; the password is the
                          first line of standard input (never an argument: those show in ps and history)
  healthcheck             exit 0 when this host's server answers GET /health/live (for container HEALTHCHECKs)`

const out = (line: string): void => { process.stdout.write(`${line}\n`) }

async function firstLine (): Promise<string> {
  const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]()
  const first = await lines.next()
  return first.done === true ? '' : first.value
}

/** Runs one command and gives the exit code. Configuration comes from the same variables as the server. */
async function run (args: string[]): Promise<number> {
  const [command, ...rest] = args
  if (command === 'healthcheck') {
    const { config } = loadConfig()
    const healthy = await fetch(`http://127.0.0.1:${config.port}/health/live`, { signal: AbortSignal.timeout(2000) }).then((res) => res.ok, () => false)
    out(healthy ? 'ok' : 'unhealthy')
    return healthy ? 0 : 1
  }
  if (command !== 'migrate' && command !== 'create-admin') {
    process.stderr.write(`${USAGE}\n`)
    return 2
  }
  const { config } = loadConfig()
  const { db, backend } = await openDatabase(config.database, (err) => { process.stderr.write(`${err.message}\n`) })
  try {
    if (command === 'migrate') {
      const results = await migrateToLatest(db)
      for (const r of results) out(`${r.migrationName}: ${r.status}`)
      out(`${backend}: ${results.length === 0 ? 'already up to date' : `${results.length} migration(s) applied`}`)
      return 0
    }
    const email = rest[0]
    if (email === undefined) {
      process.stderr.write(`${USAGE}\n`)
      return 2
    }
    const password = await firstLine()
    if (password.length < 8 || password.length > 128) {
      process.stderr.write('the password must be 8-128 characters\n')
      return 2
    }
    await migrateToLatest(db)
    const users = createUserService(createUserRepository(db), createArgon2Hasher())
    out(`admin ${email}: ${await users.ensureAdmin(email, password)}`)
    return 0
  } finally {
    await db.destroy()
  }
}

run(process.argv.slice(2)).then((code) => { process.exitCode = code }, (err: unknown) => {
  process.stderr.write(`gatehouse: ${err instanceof ConfigError ? err.message : String((err as Error).stack)}\n`)
  process.exitCode = 1
})
