// A real browser for the journey tests: Debian's chromium driven by playwright-core, with a
// fresh profile each time. playwright-core never downloads a browser; `npm run test:setup`
// installs the Debian package when it is missing.
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { chromium, type BrowserContext, type Page } from 'playwright-core'

export const CHROMIUM_PATH = '/usr/bin/chromium'

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync'
]

/** The repository root (this file is test/helpers/chromium.ts). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')
export const SCREENSHOT_DIR = join(REPO_ROOT, 'test-artifacts', 'screenshots')

export interface RealBrowser {
  context: BrowserContext
  page: Page
  /** Console errors and failed page loads seen so far (CSP violations show up here). */
  problems: string[]
  close: () => Promise<void>
}

export async function launchChromium (opts: { viewport?: { width: number, height: number } } = {}): Promise<RealBrowser> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(`${CHROMIUM_PATH} is missing: run \`npm run test:setup\` (installs the Debian package chromium)`)
  }
  const userDataDir = await mkdtemp(join(tmpdir(), 'entra-gw-chromium-'))
  let context: BrowserContext
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM_PATH,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: opts.viewport ?? { width: 1024, height: 720 },
      locale: 'en-US',
      timeout: 30_000
    })
  } catch (err) {
    await rm(userDataDir, { recursive: true, force: true })
    throw err
  }
  const page = context.pages()[0] ?? await context.newPage()
  const problems: string[] = []
  context.on('page', p => watch(p, problems))
  watch(page, problems)
  return {
    context,
    page,
    problems,
    close: async () => {
      await context.close().catch(() => {})
      await rm(userDataDir, { recursive: true, force: true })
    }
  }
}

/**
 * Records what would be wrong with a page beyond its own status: console errors (CSP
 * violations are reported there), script errors, and sub-resources (stylesheets, images) that
 * failed. Documents are judged by the test itself (a 403 page is meant to be a 403), and so is
 * the browser's own favicon probe, which a gateway answers like any other request.
 */
function watch (page: Page, problems: string[]): void {
  page.on('console', msg => {
    // Chromium repeats every HTTP error status as "Failed to load resource" without naming
    // it; the response listener below reports those that matter, with their URL.
    if (msg.type() === 'error' && !msg.text().startsWith('Failed to load resource')) problems.push(`console error on ${page.url()}: ${msg.text()}`)
  })
  page.on('pageerror', err => problems.push(`page error on ${page.url()}: ${err.message}`))
  page.on('response', response => {
    const request = response.request()
    if (response.status() < 400 || request.isNavigationRequest()) return
    if (new URL(request.url()).pathname === '/favicon.ico') return
    problems.push(`${request.resourceType()} ${request.url()} answered ${response.status()} on ${page.url()}`)
  })
  page.on('requestfailed', request => {
    // ERR_ABORTED: the page itself let go (an EventSource closed, a navigation moved on).
    if (request.failure()?.errorText === 'net::ERR_ABORTED') return
    problems.push(`${request.resourceType()} ${request.url()} failed (${request.failure()?.errorText ?? 'unknown'}) on ${page.url()}`)
  })
}

/** A full-page screenshot in test-artifacts/screenshots/; returns its path and size. */
export async function screenshot (page: Page, name: string): Promise<{ path: string, bytes: number }> {
  await mkdir(SCREENSHOT_DIR, { recursive: true })
  const path = join(SCREENSHOT_DIR, `${name}.png`)
  await page.screenshot({ path, fullPage: true })
  return { path, bytes: (await stat(path)).size }
}
