// A bounded fuzz of the running gateway over real sockets: random and malformed request
// lines, paths, headers, cookies and sign-in callbacks, sent as raw bytes (what fetch and
// node:http refuse to send), with and without alice's session. After every case:
//   1. the gateway still answers /healthz (and answered the case at all);
//   2. no 5xx other than 502/503/504;
//   3. no stack trace, node_modules or checkout path in a response;
//   4. nothing without a session reaches the upstream (except the public /api/config), and
//      nothing under /api/admin (role ADMIN, which alice lacks) does with hers;
//   5. the connection and identity headers the upstream sees are exactly the gateway's
//      (no client-sent X-Forwarded-*, Forwarded, X-Real-IP, ... in any case or `_` spelling),
//      and the gateway's cookie is not passed on.
// Replay a failure: FUZZ_SEED=<seed> FUZZ_ONLY=<property> [FUZZ_PATH=<path>] npx tap test/e2e/fuzz.test.ts
// (seed and path are in the failure report). FUZZ_RUNS=<factor> scales the number of cases;
// FUZZ_SURVEY=1 goes on past failures and lists each kind found once (no shrinking).
import t from 'tap'
import fc from 'fast-check'
import { realpathSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { Browser, signIn } from '../helpers/browser.js'
import { startStack } from '../helpers/stack.js'
import { DEMO_USERS } from '../../dev/idp.js'
import {
  arbitraries, caseOf, describe, protectedHeaders, responseViolations, sendRaw, serialize, startRecordingUpstream, upstreamViolations,
  PUBLIC_PREFIX, RESTRICTED_PREFIX, type Expectations, type FuzzCase, type RawResponse, type RecordedRequest, type Wire
} from '../helpers/fuzz.js'

const alice = DEMO_USERS.find(u => u.username === 'alice')!

function envNumber (name: string): number | undefined {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return undefined
  const n = Number(raw)
  if (!Number.isFinite(n)) throw new Error(`${name} must be a number (got "${raw}"); unset it for a random seed and the default run count.`)
  return n
}
const SEED = envNumber('FUZZ_SEED')
const SCALE = envNumber('FUZZ_RUNS') ?? 1
const ONLY = process.env.FUZZ_ONLY
const PATH = process.env.FUZZ_PATH
const SURVEY = process.env.FUZZ_SURVEY === '1'
/** A bound on waiting for one answer (not a speed check): a complete request left unanswered this long is a hang. */
const ANSWER_WITHIN_MS = 20_000

t.test('fuzz: hostile requests against a running gateway', async t => {
  const rules = join(t.testdir({ 'rules.yaml': `public:\n  - ${PUBLIC_PREFIX}\nrules:\n  - path: ${RESTRICTED_PREFIX}\n    roles: [ADMIN]\n` }), 'rules.yaml')
  const upstream = await startRecordingUpstream()
  const stack = await startStack({ upstream, env: { AUTHZ_RULES_FILE: rules, BEARER_AUTH: 'true', FORWARD_ACCESS_TOKEN: 'true' } })
  t.teardown(async () => {
    await stack.close()
    await upstream.close()
  })
  const port = Number(new URL(stack.url).port)
  const cookieName = stack.config.cookieName
  const loginCookieName = stack.config.loginCookieName

  const browser = new Browser()
  await signIn(browser, `${stack.url}/`, 'alice', 'alice')
  const session = browser.cookie(stack.url, cookieName)
  // A browser that started signing in (three tabs) and never finished: its login cookie holds the transactions.
  const starter = new Browser()
  const pendingStates: string[] = []
  for (let i = 0; i < 3; i++) {
    const res = await starter.request(`${stack.url}/tab-${i}`)
    const state = new URL(res.headers.get('location') ?? '', stack.url).searchParams.get('state')
    if (state !== null) pendingStates.push(state)
    await res.arrayBuffer()
  }
  const pending = starter.cookie(stack.url, loginCookieName)
  if (session === undefined || pending === undefined || pendingStates.length !== 3) throw new Error('setup: no session or pending sign-in cookie')
  const wire: Wire = { port, cookieName, loginCookieName, session, pending }
  // The upstream's earlier requests (the page after sign-in) carry no case id.
  const seenBefore = upstream.requests.length

  // Every request the fuzz sends carries a case id; the upstream's records are judged by it.
  const cases = new Map<string, FuzzCase>()
  const descriptions = new Map<string, string>()
  let counter = 0
  let cursor = seenBefore
  let current = ''
  const plain = (over: Partial<FuzzCase>): FuzzCase => ({
    method: 'GET', target: '/', version: 'HTTP/1.1', lines: [], credential: 'none', cookies: [], cookieAt: 0, cookieSeparator: '; ', splitCookies: false, body: { kind: 'none' }, ...over
  })
  const send = async (c: FuzzCase): Promise<{ id: string, bytes: Buffer, response: RawResponse, records: RecordedRequest[] }> => {
    const id = `case-${++counter}`
    cases.set(id, c)
    const bytes = serialize(c, id, wire)
    current = describe(c, id, wire)
    descriptions.set(id, current)
    const response = await sendRaw(port, bytes, { head: c.method === 'HEAD', timeoutMs: ANSWER_WITHIN_MS })
    const records = upstream.requests.slice(cursor)
    cursor = upstream.requests.length
    return { id, bytes, response, records }
  }

  // What the gateway itself sends upstream for clean requests: the reference for invariant 5.
  const baseline = async (c: FuzzCase): Promise<Record<string, string>> => {
    const { response, records } = await send(c)
    if (response.status !== 200 || records.length !== 1) throw new Error(`setup: baseline ${c.target} answered ${response.status ?? 'nothing'} with ${records.length} upstream requests`)
    return protectedHeaders((records[0] as RecordedRequest).headers)
  }
  const json = ['Accept: application/json']
  const signedIn = await baseline(plain({ target: '/api/convos', lines: json, credential: 'session' }))
  const signedInPublic = await baseline(plain({ target: '/api/config', lines: json, credential: 'session' }))
  const anonymous = await baseline(plain({ target: '/api/config', lines: json }))
  t.equal(signedIn['x-forwarded-email'], alice.email, 'baseline: the gateway sends alice\'s identity')
  t.ok(signedIn['x-forwarded-identity'], 'baseline: an identity JWT')
  t.ok(signedIn['x-forwarded-access-token'], 'baseline: the access token (FORWARD_ACCESS_TOKEN)')
  t.equal(anonymous['x-forwarded-user'], undefined, 'baseline: no identity without a session')

  const checkout = realpathSync(process.cwd())
  const exp: Expectations = {
    cookieName,
    loginCookieName,
    signedIn: [signedIn, signedInPublic],
    anonymous,
    leaks: [...new Set([process.cwd(), checkout, dirname(realpathSync(join(checkout, 'node_modules'))), 'node_modules'])]
  }
  const stats = new Map<number, number>()
  let reached = 0
  const health = serialize(plain({ target: '/healthz' }), 'health', wire)

  /** Invariants 4 and 5 for what the upstream got since the last look, each judged by the case it came from. */
  const judge = (records: RecordedRequest[], id: string): string[] => {
    const problems: string[] = []
    for (const record of records) {
      const marker = caseOf(record)
      const owner = marker !== undefined ? cases.get(marker) : undefined
      if (owner === undefined) {
        problems.push(`invariant 4: the upstream got a request the client never sent as one (smuggled or split; marker ${JSON.stringify(marker)}): ${record.method} ${JSON.stringify(record.url)}`)
        continue
      }
      const found = upstreamViolations(owner, record, wire, exp)
      problems.push(...(marker === id ? found : found.map(p => `[arrived late, from ${String(marker)}: ${descriptions.get(String(marker)) ?? ''}] ${p}`)))
    }
    return problems
  }
  /** Runs one case; the problems found, each naming its invariant. */
  const check = async (c: FuzzCase): Promise<string[]> => {
    const { id, bytes, response, records } = await send(c)
    const problems = [...responseViolations(response, bytes.toString('latin1'), exp), ...judge(records, id)]
    const alive = await sendRaw(port, health, { head: false, timeoutMs: ANSWER_WITHIN_MS })
    if (alive.status !== 200) problems.push(`invariant 1: /healthz answered ${alive.status ?? 'nothing'} after this case`)
    stats.set(response.status ?? 0, (stats.get(response.status ?? 0) ?? 0) + 1)
    if (records.length > 0) reached++
    return problems
  }
  // A crash of the gateway is a crash of this process: say which case did it before tap reports it.
  const onCrash = (err: Error): void => { console.error(`fuzz: uncaught ${err.name} while the gateway handled ${current}`) }
  process.on('uncaughtExceptionMonitor', onCrash)
  t.teardown(() => { process.off('uncaughtExceptionMonitor', onCrash) })

  const arbs = arbitraries({ ...wire, callbackPath: stack.config.callbackPath, pendingStates })
  const properties: Array<{ name: string, arb: fc.Arbitrary<FuzzCase>, runs: number }> = [
    { name: 'paths', arb: arbs.pathCase, runs: 800 },
    { name: 'headers', arb: arbs.headerCase, runs: 900 },
    { name: 'cookies', arb: arbs.cookieCase, runs: 400 },
    { name: 'callback', arb: arbs.callbackCase, runs: 500 },
    { name: 'everything', arb: arbs.fullCase, runs: 400 }
  ]
  for (const property of properties) {
    if (ONLY !== undefined && ONLY !== property.name) continue
    await t.test(`fuzz ${property.name}`, async t => {
      const seed = SEED ?? (Date.now() ^ Math.floor(Math.random() * 0x7fffffff))
      const numRuns = Math.max(1, Math.round(property.runs * SCALE))
      t.comment(`fuzz ${property.name}: seed ${seed}, ${numRuns} cases (replay: FUZZ_SEED=${seed} FUZZ_ONLY=${property.name} npx tap test/e2e/fuzz.test.ts)`)
      stats.clear()
      reached = 0
      // FUZZ_SURVEY: go on past failures and list each kind once, with the shortest request that showed it.
      const survey = new Map<string, { count: number, problem: string, request: string }>()
      const details = await fc.check(fc.asyncProperty(property.arb, async c => {
        const problems = [...new Set(await check(c))]
        if (problems.length === 0) return
        if (!SURVEY) throw new Error(`${problems.join('\n')}\nrequest: ${current}`)
        for (const problem of problems) {
          // One kind per invariant and header (whatever its spelling) or status.
          const kind = problem.replace(/\[arrived late[^\]]*\] /, 'late ').replace(/"(?:[^"\\]|\\.)*"/g, '"…"').replace(/\((?:upgrade )?[A-Z]+ "…"\)/g, '').replace(/x[-_][a-z_-]+/g, m => m.replaceAll('_', '-'))
          const seen = survey.get(kind)
          if (seen === undefined || current.length < seen.request.length) survey.set(kind, { count: (seen?.count ?? 0) + 1, problem, request: current })
          else seen.count++
        }
      }), { seed, numRuns, path: ONLY === property.name ? PATH : undefined })
      t.comment(`fuzz ${property.name}: statuses ${JSON.stringify(Object.fromEntries([...stats].sort(([a], [b]) => a - b)))}, ${reached} reached the upstream`)
      if (details.failed) {
        const error = details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance)
        t.fail(`fuzz ${property.name} broke an invariant (replay: FUZZ_SEED=${details.seed} FUZZ_ONLY=${property.name} FUZZ_PATH=${details.counterexamplePath ?? ''} npx tap test/e2e/fuzz.test.ts)\n${error}\n${fc.defaultReportMessage(details) ?? ''}`)
      }
      for (const { count, problem, request } of survey.values()) t.fail(`${problem}\n  (${count}×) shortest request: ${request}`)
      // The suite's own footing: alice is still signed in, so the signed-in cases were really signed in.
      const still = await send(plain({ target: '/api/convos', lines: json, credential: 'session' }))
      const own = still.records.filter(r => caseOf(r) === still.id)
      t.equal(own.length, 1, 'the signed-in session survived the run')
      t.equal(own[0]?.headers['x-forwarded-email'], alice.email)
      if (!details.failed && !SURVEY) t.same(judge(still.records.filter(r => caseOf(r) !== still.id), still.id), [], 'nothing wrong arrived late')
      const alive = await sendRaw(port, health, { head: false, timeoutMs: ANSWER_WITHIN_MS })
      t.equal(alive.status, 200, '/healthz answers after the run')
    })
  }
})
