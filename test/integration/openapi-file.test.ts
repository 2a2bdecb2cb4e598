import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { build } from '../helper.js'

const root = new URL('../../', import.meta.url).pathname
const REGENERATE = 'stale: run `npm run openapi` and commit openapi.json and clients/gatehouse.d.ts'

/** Runs a CLI from node_modules/.bin, without the test runner's loaders, and with nothing phoned home. */
async function bin (name: string, args: string[]): Promise<{ code: number | null, stdout: string, stderr: string }> {
  const { NODE_OPTIONS: _loaders, ...env } = process.env
  const child = spawn(join(root, 'node_modules/.bin', name), args, {
    cwd: root,
    env: { ...env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true', NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  const [code] = await once(child, 'exit') as [number | null]
  return { code, stdout, stderr }
}

t.test('the committed openapi.json is what the server serves', async (t) => {
  const app = await build(t)
  const served = (await app.inject({ url: '/openapi.json' })).json()
  const committed = await readFile(join(root, 'openapi.json'), 'utf8')
  t.same(JSON.parse(committed), served, REGENERATE)
  t.equal(committed, `${JSON.stringify(served, null, 2)}\n`, 'formatted as npm run openapi writes it')
})

t.test('the committed client types are what openapi-typescript makes of openapi.json', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'gatehouse-types-'))
  t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
  const out = join(dir, 'gatehouse.d.ts')
  const { code, stderr } = await bin('openapi-typescript', ['openapi.json', '--output', out])
  t.equal(code, 0, stderr)
  t.equal(await readFile(join(root, 'clients/gatehouse.d.ts'), 'utf8'), await readFile(out, 'utf8'), REGENERATE)
})

t.test('Redocly finds no error in openapi.json', async (t) => {
  const { code, stdout, stderr } = await bin('redocly', ['lint', '--config', '.redocly.yaml', '--format', 'json', 'openapi.json'])
  t.equal(code, 0, stderr)
  const { totals } = JSON.parse(stdout) as { totals: { errors: number, warnings: number } }
  t.equal(totals.errors, 0, 'no errors')
  t.comment(`redocly: ${totals.warnings} warning(s)`)
})

t.test('Spectral (spectral:oas) finds no error in openapi.json', async (t) => {
  const { stdout, stderr } = await bin('spectral', ['lint', '--ruleset', '.spectral.yaml', '--format', 'json', '--quiet', 'openapi.json'])
  // Severity 0 is an error; the exit code alone would also count warnings with --fail-severity warn.
  const results = JSON.parse(stdout) as Array<{ code: string, severity: number, message: string }>
  t.same(results.filter((r) => r.severity === 0), [], stderr)
  t.comment(`spectral: ${results.filter((r) => r.severity === 1).length} warning(s)`)
})
