/**
 * The compliance console end to end in a real headless Chromium (Debian's package, driven by
 * playwright-core): a real Portcullis server with the audit log and the console on, a bundle
 * compiled by the real opa, real decisions from callers with really signed JWT-SVIDs — then
 * what a compliance reader does: load /ui/, filter to denies, export them, open a decision and
 * see its inclusion proof verified by the browser, read the overview chart, run an access
 * review and download it, run a full integrity verification. Screenshots of each page go to a
 * temporary directory, or to docs/images/ with CONSOLE_SCREENSHOTS=docs/images (docs/console.md).
 * Nothing is mocked except in the one test of the browser's verifier, which says so.
 */
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { chromium, type BrowserContext, type Page } from 'playwright-core'
import { generateCheckpointKey } from '../../src/audit/log/checkpoint.js'
import { buildBundleDir, buildFixture, copyFixture } from '../helpers/bundles.js'
import { jwtSvidIssuer } from '../helpers/jwt-svid.js'
import { inCI, needsOpa } from '../helpers/opa.js'
import { startRuntime } from '../helpers/runtime.js'

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium'
const BILLING = 'spiffe://example.org/ns/shop/sa/billing'
const AUDITOR = 'spiffe://example.org/ns/ops/sa/auditor'
const FRONTEND = 'spiffe://example.org/ns/shop/sa/frontend'

function needsChromium (): { skip?: string } {
  if (existsSync(CHROMIUM) || inCI) return needsOpa()
  return { skip: `${CHROMIUM} not found: run scripts/install-chromium.sh (the browser tests are skipped outside CI)` }
}

/** A datetime-local control's value for `d` (local time, minutes): what a person types. */
function localMinute (d: Date): string {
  const pad = (n: number): string => String(n).padStart(2, '0')
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`
}

/** Who asks what; the expected outcome follows from the grants in test/fixtures/bundles/console. */
const TRAFFIC: Array<{ who: string | null, method: string, path: string, outcome: 'allow' | 'deny' }> = [
  { who: BILLING, method: 'POST', path: '/charges', outcome: 'allow' },
  { who: BILLING, method: 'POST', path: '/charges', outcome: 'allow' },
  { who: BILLING, method: 'POST', path: '/charges', outcome: 'allow' },
  { who: BILLING, method: 'GET', path: '/charges', outcome: 'deny' },
  { who: AUDITOR, method: 'GET', path: '/charges', outcome: 'allow' },
  { who: FRONTEND, method: 'POST', path: '/charges', outcome: 'deny' },
  { who: FRONTEND, method: 'POST', path: '/charges', outcome: 'deny' },
  { who: null, method: 'POST', path: '/refunds', outcome: 'deny' },
]
const DENIES = TRAFFIC.filter((t) => t.outcome === 'deny').length

describe('console in a real browser', needsChromium(), () => {
  let url = ''
  let close: () => Promise<void> = async () => {}
  let context: BrowserContext | undefined
  let page: Page
  let shots = ''
  const pageErrors: string[] = []
  let startedAt = 0
  const decided: Array<{ decision_id: string, outcome: string }> = []
  const work = mkdtempSync(join(tmpdir(), 'portcullis-console-e2e-'))

  before(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`CI=true but ${CHROMIUM} is missing: run scripts/install-chromium.sh`)
    // the console as `npm install` builds it (prepare): rebuild so the test sees the sources
    execFileSync(process.execPath, ['scripts/build-ui.mjs'], { stdio: 'pipe' })
    shots = process.env.CONSOLE_SCREENSHOTS !== undefined ? resolve(process.env.CONSOLE_SCREENSHOTS) : join(work, 'shots')
    mkdirSync(shots, { recursive: true })

    const bundles = join(work, 'bundles')
    mkdirSync(bundles)
    buildFixture('console', bundles, { revision: 'payments-2026.11' })
    const key = generateCheckpointKey()
    writeFileSync(join(work, 'checkpoint.pem'), key.privateKeyPem, { mode: 0o600 })
    const issuer = await jwtSvidIssuer(work)
    const started = await startRuntime({
      identity: {
        trust_domains: { 'example.org': { jwt_authorities: [issuer.jwksFile] } },
        jwt_svid: { audiences: ['portcullis'] },
        watch: { enabled: false },
        on_missing: 'allow',
      },
      bundles: { dir: bundles },
      audit: { enabled: true, dir: join(work, 'audit'), durability: 'sync', checkpoint: { every_events: 1, every_seconds: 3600, key_file: join(work, 'checkpoint.pem'), origin: 'portcullis.test/console-e2e' } },
      console: { enabled: true, grants_path: 'system/console/grants' },
    } as never)
    url = started.url
    close = started.close

    startedAt = Date.now()
    const tokens = new Map<string, string>()
    for (const who of [BILLING, AUDITOR, FRONTEND]) tokens.set(who, await issuer.sign(who, { expSeconds: 3600 }))
    for (const t of TRAFFIC) {
      const headers: Record<string, string> = { 'content-type': 'application/json' }
      if (t.who !== null) headers.authorization = `Bearer ${tokens.get(t.who) as string}`
      const r = await fetch(`${url}/v1/data/payments/allow`, { method: 'POST', headers, body: JSON.stringify({ input: { method: t.method, path: t.path } }) })
      assert.equal(r.status, 200)
      const body = await r.json() as { decision_id: string, result: boolean }
      assert.equal(body.result, t.outcome === 'allow', `${t.who ?? 'anonymous'} ${t.method} ${t.path}`)
      decided.push({ decision_id: body.decision_id, outcome: t.outcome })
    }

    // a fresh profile per run (no state from an earlier run or another user)
    context = await chromium.launchPersistentContext(join(work, 'chromium-profile'), {
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      viewport: { width: 1280, height: 800 },
      acceptDownloads: true,
    })
    page = await context.newPage()
    // a CSP violation or a script error shows up here: the run must have none
    page.on('pageerror', (e) => pageErrors.push(`pageerror: ${e.message}`))
    page.on('console', (m) => { if (m.type() === 'error') pageErrors.push(`console: ${m.text()}`) })
    page.setDefaultTimeout(20_000)
  })

  after(async () => {
    await context?.close()
    await close()
    rmSync(work, { recursive: true, force: true })
  })

  const shot = async (name: string): Promise<void> => {
    const file = join(shots, `console-${name}.png`)
    await page.screenshot({ path: file })
    const png = readFileSync(file)
    assert.equal(png.subarray(1, 4).toString(), 'PNG')
  }

  it('loads /ui/ with its own assets under a strict CSP and lists the decisions', async () => {
    const r = await page.goto(`${url}/ui/`)
    assert.equal(r?.status(), 200)
    const csp = r?.headers()['content-security-policy'] ?? ''
    assert.match(csp, /script-src 'self'/)
    await page.locator('table.data tbody tr').first().waitFor()
    // the payments decisions, and the system authz decisions that let the console's own calls in (audited too)
    const rows = await page.locator('table.data tbody tr').allInnerTexts()
    assert.equal(rows.filter((r) => r.includes('payments/allow')).length, TRAFFIC.length, rows.join('\n'))
    assert.ok(rows.some((r) => r.includes('system/authz/allow')))
    await shot('decisions')
  })

  it('filters to denies and exports exactly them', async () => {
    await page.getByLabel('deny', { exact: true }).check()
    await page.getByRole('button', { name: 'Apply filters' }).click()
    await page.waitForURL(/outcome=deny/)
    // the table is replaced when the new page of results arrives
    await page.waitForFunction((n) => {
      const cells = Array.from(document.querySelectorAll('table.data tbody tr td:nth-child(2)'))
      return cells.length === n && cells.every((c) => c.textContent === 'deny')
    }, DENIES)
    const outcomes = await page.locator('table.data tbody tr td:nth-child(2)').allInnerTexts()
    assert.deepEqual(outcomes, Array(DENIES).fill('deny'))
    await shot('decisions-deny')

    const [download] = await Promise.all([page.waitForEvent('download'), page.locator('#export-ndjson').click()])
    const file = await download.path()
    const lines = readFileSync(file, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>)
    // header, events (each the exact stored record and its inclusion proof), trailer
    assert.equal(lines[0]?.type, 'header')
    assert.equal(lines.at(-1)?.type, 'trailer')
    const events = lines.filter((l) => l.type === 'event')
    assert.ok(events.every((e) => Array.isArray(e.inclusion_proof) && (e.inclusion_proof as unknown[]).length > 0))
    const records = events.map((e) => JSON.parse(e.record as string) as { decision_id: string, outcome: string })
    assert.deepEqual(records.map((r) => r.decision_id).sort(), decided.filter((d) => d.outcome === 'deny').map((d) => d.decision_id).sort())
    assert.ok(records.every((r) => r.outcome === 'deny'))
  })

  it('opens a denied decision and verifies its inclusion proof in the browser', async () => {
    await page.locator('table.data tbody tr a.open').first().click()
    await page.waitForURL(/#\/decision\//)
    const status = page.locator('#proof-status')
    await status.filter({ hasText: 'verified ✓' }).waitFor()
    assert.match(await status.innerText(), /verified ✓ against checkpoint of size \d+ signed by \S+/)
    assert.match(await page.locator('.facts').innerText(), /deny/)
    assert.match(await page.locator('section[aria-labelledby="h-reasons"]').innerText(), /may not|no verified identity/)
    await shot('decision')
  })

  it('shows "verification failed" when the record it is given was altered (a test of the browser verifier: the API response is intercepted and one byte flipped)', async () => {
    await page.route('**/v1/console/decisions/*/*', async (route) => {
      const response = await route.fetch()
      const body = await response.json() as { record: string }
      // flip one byte of the stored record: "deny" outcome text becomes "denY"
      assert.ok(body.record.includes('"outcome":"deny"'))
      body.record = body.record.replace('"outcome":"deny"', '"outcome":"denY"')
      await route.fulfill({ response, json: body })
    })
    await page.reload()
    const status = page.locator('#proof-status')
    await status.filter({ hasText: 'verification failed' }).waitFor()
    assert.match(await status.innerText(), /step: root/)
    // the page shows the record it was given (the one that failed), not a separate server copy
    assert.match(await page.locator('.facts').innerText(), /denY/)
    await shot('decision-tampered')
    await page.unroute('**/v1/console/decisions/*/*')
  })

  it('draws the overview chart for the period of the traffic', async () => {
    await page.getByRole('link', { name: 'Overview' }).click()
    await page.locator('#decisions-chart canvas').waitFor()
    // narrow the period to the minutes around the traffic (the form has minute precision)
    const from = new Date(Math.floor((startedAt - 4 * 60_000) / 60_000) * 60_000)
    await page.getByLabel('From', { exact: true }).fill(localMinute(from))
    await page.getByLabel('To', { exact: true }).fill(localMinute(new Date(Date.now() + 2 * 60_000)))
    await page.getByRole('button', { name: 'Apply filters' }).click()
    await page.waitForURL(/#\/overview\?.*from=/)
    // the chart of the new period (the old one stays until the new data arrives)
    const caption = `${from.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z')} to`
    await page.locator('figure.chart figcaption', { hasText: caption }).waitFor()
    await page.locator('#decisions-chart canvas').waitFor()
    const text = await page.locator('main').innerText()
    assert.match(text, /Top denied callers/)
    assert.ok(text.includes(FRONTEND))
    await shot('overview')
  })

  it('runs an access review, lists unused grants and downloads it as CSV', async () => {
    await page.getByRole('link', { name: 'Access review' }).click()
    await page.getByRole('button', { name: 'Last 24 hours' }).click()
    await page.getByLabel('Decision path prefix (optional)').fill('payments')
    await page.getByRole('button', { name: 'Run review' }).click()
    await page.locator('#review-table tbody tr').first().waitFor().catch(async (e: Error) => { throw new Error(`${e.message}\n${await page.locator('main').innerText()}`) })
    const rows = await page.locator('#review-table tbody tr').allInnerTexts()
    // only the payments service's decisions: not the console's own system authz checks
    assert.ok(rows.every((r) => !r.includes('/v1/console')), rows.join('\n'))
    const billing = rows.find((r) => r.includes(BILLING) && r.includes('POST'))
    assert.ok(billing !== undefined, rows.join('\n'))
    assert.match(billing, /\/charges\s+POST\s+3\s+0/)
    // billing may POST /refunds but never did: least-privilege evidence
    assert.match(await page.locator('#unused-table').innerText(), /\/refunds/)
    await shot('access-review')

    const [download] = await Promise.all([page.waitForEvent('download'), page.locator('#review-csv').click()])
    const csv = readFileSync(await download.path(), 'utf8')
    assert.ok(csv.includes(BILLING))
    assert.ok(csv.includes('/charges'))
    const report = await page.request.get(new URL(await page.locator('#review-html').getAttribute('href') as string, url).toString())
    assert.equal(report.status(), 200)
    assert.match(report.headers()['content-type'] ?? '', /text\/html/)
  })

  it('runs a full integrity verification to completion', async () => {
    await page.getByRole('link', { name: 'Integrity' }).click()
    await page.locator('#integrity-table tbody tr').first().waitFor()
    assert.match(await page.locator('#integrity-table').innerText(), /valid/)
    await page.getByRole('button', { name: 'Run verification' }).click()
    const result = page.locator('#verify-result')
    await result.waitFor()
    assert.match(await result.innerText(), /Verification passed/)
    await shot('integrity')
  })

  it('replays an uploaded candidate bundle and lists the decisions it would change', async () => {
    // the candidate also grants frontend POST /charges: its two denies would become allows
    const src = copyFixture('console', work)
    const policy = join(src, 'payments', 'policy.rego')
    writeFileSync(policy, readFileSync(policy, 'utf8').replace('grants := [', 'grants := [\n\t{"caller": "spiffe://example.org/ns/shop/sa/frontend", "path": "/charges", "method": "POST"},'))
    const candidate = buildBundleDir(src, join(work, 'candidate.tar.gz'), { revision: 'payments-2026.12-rc1' })
    await page.getByRole('link', { name: 'Replay' }).click()
    await page.getByLabel('Candidate bundle (.tar.gz)').setInputFiles(candidate)
    await page.getByRole('button', { name: 'Replay' }).click()
    const summary = page.locator('#replay-summary')
    await summary.waitFor()
    assert.match(await summary.innerText(), /payments-2026\.12-rc1.*\b2 would change\b/s)
    const groups = await page.locator('#replay-groups tbody tr').allInnerTexts()
    assert.equal(groups.length, 1, groups.join('\n'))
    assert.ok(groups[0]?.includes(FRONTEND))
    assert.match(groups[0] ?? '', /deny → allow/)
    await shot('replay')
  })

  it('is keyboard operable and labels every control', async () => {
    await page.goto('about:blank')
    await page.goto(`${url}/ui/#/decisions`)
    await page.locator('table.data tbody tr').first().waitFor()
    const focused = async (): Promise<string> => await page.evaluate(() => document.activeElement?.textContent?.trim() ?? '')
    await page.keyboard.press('Tab')
    assert.equal(await focused(), 'Skip to content')
    await page.keyboard.press('Tab')
    assert.equal(await focused(), 'Decisions')
    await page.keyboard.press('Tab')
    assert.equal(await focused(), 'Overview')
    await page.keyboard.press('Enter')
    await page.waitForURL(/#\/overview/)
    // focus moves to the page's content on navigation
    await page.waitForFunction(() => document.activeElement?.id === 'main')
    for (const hash of ['#/decisions', '#/overview', '#/access', '#/replay']) {
      await page.goto(`${url}/ui/${hash}`)
      await page.locator('main form').waitFor()
      const unlabelled = await page.evaluate(() => Array.from(document.querySelectorAll('input, select, textarea'))
        .filter((el) => (el as HTMLInputElement).labels?.length === 0 && el.closest('fieldset')?.querySelector('legend') == null)
        .map((el) => el.outerHTML))
      assert.deepEqual(unlabelled, [], hash)
    }
  })

  it('had no script error or CSP violation on any page', () => {
    assert.deepEqual(pageErrors, [])
  })
})
