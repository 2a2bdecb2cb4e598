/** Running the project's entry points (server.ts, cli.ts) as real child processes. */
import { spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { once } from 'node:events'

const root = new URL('../', import.meta.url).pathname

/** Runs one of the project's entry points as a real process, through the same TypeScript loader as the tests. */
export function run (entry: string, env: Record<string, string>, args: string[] = [], input = ''): ChildProcess {
  const child = spawn(process.execPath, [...process.execArgv, join(root, entry), ...args], {
    cwd: root,
    env: { ...process.env, NODE_ENV: 'test', LOG_LEVEL: 'info', ...env },
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
