import { existsSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { chromium } from 'playwright-core'
import t from 'tap'
import { startServer } from '../processes.js'

const CHROMIUM = '/usr/bin/chromium'
const SCREENSHOT_DIR = new URL('../../.tap/screenshots/', import.meta.url).pathname

// playwright-core brings no browser of its own, and CI must not download one: the distribution's
// chromium package is used, and without it the test says why it did not run.
const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} is missing (apt-get install -y chromium)`

t.test('/docs in a real browser shows every operation and loads nothing from another host', { skip }, async (t) => {
  const { base } = await startServer(t)
  const doc = await (await fetch(`${base}/openapi.json`)).json() as { paths: Record<string, Record<string, { summary?: string }>> }
  const operations = Object.values(doc.paths).flatMap((methods) => Object.values(methods))

  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-background-networking', '--headless'] })
  t.teardown(async () => { await browser.close() })
  const page = await browser.newPage()
  const elsewhere: string[] = []
  // Every request passes through here; one for another host is recorded and never sent.
  await page.route('**/*', async (route) => {
    const url = new URL(route.request().url())
    if (url.protocol === 'data:' || url.hostname === '127.0.0.1') return await route.continue()
    elsewhere.push(url.href)
    return await route.abort()
  })

  await page.goto(`${base}/docs`)
  await page.locator('.opblock').first().waitFor({ timeout: 30_000 })
  t.equal(await page.locator('.opblock').count(), operations.length, 'one block per operation')
  const shown = await page.locator('.opblock-summary-description').allInnerTexts()
  for (const { summary } of operations) t.ok(shown.includes(String(summary)), `shows "${String(summary)}"`)

  await mkdir(SCREENSHOT_DIR, { recursive: true })
  await page.screenshot({ path: `${SCREENSHOT_DIR}docs.png`, fullPage: true })
  t.same(elsewhere, [], 'no request left 127.0.0.1')
})
