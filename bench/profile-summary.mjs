#!/usr/bin/env node
// Summarises V8 CPU profiles (node --cpu-prof): the functions with the most self time, and the
// share of time spent in each package. Usage: node bench/profile-summary.mjs <file.cpuprofile>... [--top=N]
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'

const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '25' } } })
const top = Number(values.top)
// Piped into head, stdout may close early: that is not an error.
process.stdout.on('error', () => process.exit(0))

/** Which package (or the app itself, or Node/V8) a frame's script belongs to. */
function owner (url) {
  if (url === '') return '(native/V8)'
  if (url.startsWith('node:')) return 'node core'
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (pkg !== null) return pkg[1]
  return /\/dist\//.test(url) ? 'gatehouse (dist)' : url
}

for (const file of positionals) {
  const profile = JSON.parse(readFileSync(file, 'utf8'))
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const self = new Map()
  const counts = new Map()
  for (const id of profile.samples) counts.set(id, (counts.get(id) ?? 0) + 1)
  let total = 0
  for (const [id, n] of counts) {
    total += n
    const node = byId.get(id)
    const f = node.callFrame
    const key = `${f.functionName || '(anonymous)'} ${f.url.replace(/^file:\/\/.*?node_modules\//, '').replace(/^file:\/\/.*?\/dist\//, 'dist/')}:${f.lineNumber + 1}`
    const entry = self.get(key) ?? { samples: 0, owner: owner(f.url) }
    entry.samples += n
    self.set(key, entry)
  }
  const pct = (n) => `${(100 * n / total).toFixed(1)}%`
  process.stdout.write(`\n${file}: ${total} samples\n\nTop ${top} functions by self time:\n`)
  for (const [key, e] of [...self].sort((a, b) => b[1].samples - a[1].samples).slice(0, top)) {
    process.stdout.write(`  ${pct(e.samples).padStart(6)}  ${key}\n`)
  }
  const byOwner = new Map()
  for (const e of self.values()) byOwner.set(e.owner, (byOwner.get(e.owner) ?? 0) + e.samples)
  process.stdout.write('\nSelf time by package:\n')
  for (const [name, n] of [...byOwner].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    process.stdout.write(`  ${pct(n).padStart(6)}  ${name}\n`)
  }

  // Inclusive: a sample counts once for every package with a frame anywhere on its stack, so a
  // plugin's share includes the Node and V8 work it causes. Shares of the busy (non-idle) samples.
  const parent = new Map()
  for (const n of profile.nodes) for (const child of n.children ?? []) parent.set(child, n.id)
  const inclusive = new Map()
  let busy = 0
  for (const [id, n] of counts) {
    if (byId.get(id).callFrame.functionName === '(idle)') continue
    busy += n
    const owners = new Set()
    for (let at = id; at !== undefined; at = parent.get(at)) {
      const f = byId.get(at).callFrame
      if (f.url !== '') owners.add(owner(f.url))
    }
    for (const o of owners) inclusive.set(o, (inclusive.get(o) ?? 0) + n)
  }
  process.stdout.write(`\nInclusive time by package, share of ${busy} busy samples:\n`)
  for (const [name, n] of [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    process.stdout.write(`  ${(100 * n / busy).toFixed(1).padStart(5)}%  ${name}\n`)
  }
}
