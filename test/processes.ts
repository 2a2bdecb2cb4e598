/** Running the project's entry points (server.ts, cli.ts) as real child processes. */
import { spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { once } from 'node:events'
import type { Test } from 'tap'
import { freshDatabaseUrl } from './helper.js'

const root = new URL('../', import.meta.url).pathname

/** Runs one of the project's entry points as a real process, through the same TypeScript loader as the tests. */
export function run (entry: string, env: Record<string, string>, args: string[] = [], input = ''): ChildProcess {
  const child = spawn(process.execPath, [...process.execArgv, join(root, entry), ...args], {
    cwd: root,
    env: {
      ...process.env,
      NODE_ENV: 'test',
      LOG_LEVEL: 'info',
      // No load shedding: a busy CI machine must not turn these tests' requests into 503s.
      LOAD_SHED_EVENT_LOOP_DELAY_MS: '0',
      LOAD_SHED_EVENT_LOOP_UTILIZATION: '0',
      // As testConfig: tests sign many users up from one address. With REDIS_URL set (as in CI) the
      // per-IP counters are shared by every server of the run, so the default 20 signups per window
      // refused later test files' signups with 429. The throttling tests set their own limits.
      SIGNUP_MAX_PER_IP: '1000000',
      LOGIN_MAX_FAILURES_PER_IP: '1000000',
      ...env
    },
    stdio: ['pipe', 'pipe', 'pipe']
  })
  child.stdin?.end(input)
  return child
}

export async function collect (child: ChildProcess): Promise<{ code: number | null, stdout: string, stderr: string }> {
  let stdout = ''
  let stderr = ''
  child.stdout?.on('data', (d: Buffer) => { stdout += d.toString() })
  child.stderr?.on('data', (d: Buffer) => { stderr += d.toString() })
  const [code] = await once(child, 'exit') as [number | null]
  return { code, stdout, stderr }
}

/** Resolves with the base URL once the server logs that it listens. */
export async function listening (child: ChildProcess): Promise<string> {
  return await new Promise((resolve, reject) => {
    let buffered = ''
    child.stdout?.on('data', (d: Buffer) => {
      buffered += d.toString()
      const match = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(buffered)
      if (match?.[1] !== undefined) resolve(match[1])
    })
    child.once('exit', (code) => { reject(new Error(`server exited with ${String(code)} before listening:\n${buffered}`)) })
  })
}

/**
 * Starts server.ts on a free port, on a fresh database (PostgreSQL when DATABASE_URL is set,
 * in-memory PGlite otherwise); killed at teardown if the test has not stopped it.
 */
export async function startServer (t: Test, env: Record<string, string> = {}): Promise<{ child: ChildProcess, base: string, exited: ReturnType<typeof collect>, databaseUrl: string | undefined }> {
  const url = await freshDatabaseUrl(t)
  const child = run('server.ts', {
    PORT: '0',
    HOST: '127.0.0.1',
    PGLITE_DATA_DIR: 'memory://',
    JWT_SECRET: 'process-test-secret-at-least-32-chars',
    ...(url !== undefined && { DATABASE_URL: url }),
    ...env
  })
  const exited = collect(child)
  t.teardown(() => { child.kill('SIGKILL') })
  return { child, base: await listening(child), exited, databaseUrl: url }
}

/** POSTs JSON to the server. */
export async function postJson (url: string, body: unknown): Promise<Response> {
  return await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
}

/** Resolves once the child's stdout has matched `pattern` (a global regex) `count` times. */
export async function logged (child: ChildProcess, pattern: RegExp, count: number): Promise<void> {
  await new Promise<void>((resolve) => {
    let seen = ''
    const onData = (d: Buffer): void => {
      seen += d.toString()
      if ((seen.match(pattern)?.length ?? 0) >= count) {
        child.stdout?.off('data', onData)
        resolve()
      }
    }
    child.stdout?.on('data', onData)
  })
}
