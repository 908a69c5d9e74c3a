// Building blocks of the bench: child processes, nginx, signed-in gateways, load runs with a
// fine latency histogram, SSE delivery latency. Everything listens on 127.0.0.1, on free ports,
// and every child is killed (by its own pid) when the bench ends, however it ends.
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync, readdirSync } from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { randomBytes } from 'node:crypto'
import autocannon from 'autocannon'
import { loadConfig } from '../src/config.js'
import { startNginx as startNginxWith, type Nginx } from '../dev/nginx.js'
import { Browser, signIn, type BrowserRequestInit } from '../dev/sign-in-client.js'
import { CLIENT_ID, CLIENT_SECRET } from './constants.js'

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
export const BENCH_DIR = path.join(ROOT, 'bench')

// ---------------------------------------------------------------------------------------------
// Child processes
// ---------------------------------------------------------------------------------------------

const children = new Set<ChildProcess>()

/** Registers a child process to be killed when the bench exits. */
export function trackChild (child: ChildProcess): void { children.add(child) }

/** Forgets a child that has been stopped. */
export function untrackChild (child: ChildProcess): void { children.delete(child) }

/**
 * Kills every child still running, and the processes they started (Apache's serving
 * children), each by its own pid. Safe to call more than once.
 */
export function killChildren (): void {
  for (const child of children) {
    if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) continue
    const below = descendantsOf(child.pid)
    child.kill('SIGKILL')
    for (const pid of below) { try { process.kill(pid, 'SIGKILL') } catch {} }
  }
  children.clear()
}
process.once('exit', killChildren)
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => { killChildren(); process.exit(130) })
}

export interface NodeChild {
  child: ChildProcess
  /** The `ready` message the child sent. */
  ready: Record<string, unknown>
  /** Asks for a clean exit (IPC `stop`), then kills it if it has not exited within the grace time. */
  stop: (graceMs?: number) => Promise<void>
}

/** Starts `node [execArgv] --import tsx bench/<script>` and waits for its `{ type: 'ready' }` IPC message. */
export async function startNodeChild (script: string, opts: { env?: Record<string, string>, execArgv?: string[], timeoutMs?: number } = {}): Promise<NodeChild> {
  const child = spawn(process.execPath, [...(opts.execArgv ?? []), '--import', 'tsx', path.join(BENCH_DIR, script)], {
    cwd: ROOT,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc']
  })
  children.add(child)
  const ready = await new Promise<Record<string, unknown>>((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`${script} did not start within ${opts.timeoutMs ?? 30_000} ms`)) }, opts.timeoutMs ?? 30_000)
    child.on('message', (m: Record<string, unknown>) => {
      if (m.type === 'ready') { clearTimeout(timer); resolve(m) }
    })
    child.once('exit', (code, signal) => { clearTimeout(timer); reject(new Error(`${script} exited (${String(code ?? signal)}) before it was ready`)) })
    child.once('error', (err) => { clearTimeout(timer); reject(err) })
  })
  child.removeAllListeners('exit')
  return {
    child,
    ready,
    stop: async (graceMs = 5000) => {
      if (child.exitCode !== null || child.signalCode !== null) { children.delete(child); return }
      const exited = once(child, 'exit')
      if (child.connected) child.send({ type: 'stop' })
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
      await exited
      clearTimeout(timer)
      children.delete(child)
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The tiny upstream
// ---------------------------------------------------------------------------------------------

export interface BenchUpstream { url: string, port: number, pid: number, stop: () => Promise<void> }

export async function startBenchUpstream (): Promise<BenchUpstream> {
  const c = await startNodeChild('upstream-server.ts')
  const port = c.ready.port as number
  return { url: `http://127.0.0.1:${port}`, port, pid: c.child.pid as number, stop: c.stop }
}

/** node:http + undici Pool.stream, nothing else: the ceiling for a proxy written in Node. */
export async function startNodeCeiling (upstreamUrl: string): Promise<BenchUpstream> {
  const c = await startNodeChild('node-ceiling.ts', { env: { BENCH_UPSTREAM_URL: upstreamUrl } })
  const port = c.ready.port as number
  return { url: `http://127.0.0.1:${port}`, port, pid: c.child.pid as number, stop: c.stop }
}

/** Fastify + @fastify/http-proxy as it comes, no auth: what the proxy layer alone costs. */
export async function startBareProxy (upstreamUrl: string): Promise<BenchUpstream> {
  const c = await startNodeChild('bare-proxy-server.ts', { env: { BENCH_UPSTREAM_URL: upstreamUrl } })
  const port = c.ready.port as number
  return { url: `http://127.0.0.1:${port}`, port, pid: c.child.pid as number, stop: c.stop }
}

/**
 * SSE latency compares the upstream's process.hrtime with the client's. On Linux both read
 * CLOCK_MONOTONIC, one clock for every process; this checks it: the upstream's reading must
 * fall between the client's readings just before and after the request.
 */
export async function checkSharedClock (upstreamUrl: string): Promise<{ ok: boolean, detail: string }> {
  let worst = 0n
  for (let i = 0; i < 5; i++) {
    const before = process.hrtime.bigint()
    const text = await (await fetch(upstreamUrl + '/clock')).text()
    const after = process.hrtime.bigint()
    const theirs = BigInt(text)
    if (theirs < before || theirs > after) {
      return { ok: false, detail: `upstream clock ${theirs} outside [${before}, ${after}]` }
    }
    if (after - before > worst) worst = after - before
  }
  return { ok: true, detail: `upstream's hrtime fell inside the client's request window 5/5 times (window <= ${(Number(worst) / 1e6).toFixed(2)} ms)` }
}

// ---------------------------------------------------------------------------------------------
// nginx
// ---------------------------------------------------------------------------------------------

export { findNginx } from '../dev/nginx.js'
export type { Nginx } from '../dev/nginx.js'

/** A plain reverse proxy in front of the upstream: one worker, keep-alive both ways, no logging. */
export async function startNginx (upstreamPort: number): Promise<Nginx> {
  return await startNginxWith({
    onChild: child => children.add(child),
    http: port => `  # Node and Fastify put no cap on requests per connection; neither does the ceiling.
  keepalive_requests 1000000;
  upstream app {
    server 127.0.0.1:${upstreamPort};
    keepalive 64;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }`
  })
}

// ---------------------------------------------------------------------------------------------
// Gateways
// ---------------------------------------------------------------------------------------------

export interface GatewayPlan {
  name: string
  port: number
  origin: string
  env: Record<string, string>
  cookieName: string
}

/** Chooses a port and the environment for one gateway (the IdP must know its callback URL first). */
export function planGateway (name: string, port: number, issuer: string, upstreamUrl: string, extraEnv: Record<string, string> = {}): GatewayPlan {
  const origin = `http://127.0.0.1:${port}`
  const env: Record<string, string> = {
    OPENID_ISSUER: issuer + '/',
    OPENID_CLIENT_ID: CLIENT_ID,
    OPENID_CLIENT_SECRET: CLIENT_SECRET,
    OPENID_SESSION_SECRET: randomBytes(32).toString('hex'),
    // offline_access as a deployment that refreshes tokens asks for it: the stored session then
    // holds a refresh token too.
    OPENID_SCOPE: 'openid profile email offline_access',
    DOMAIN_SERVER: origin,
    UPSTREAM_URL: upstreamUrl,
    HOST: '127.0.0.1',
    PORT: String(port),
    LOG_LEVEL: 'warn',
    ...extraEnv
  }
  const config = loadConfig(env) // fails here, in the parent, on a bad environment
  return { name, port, origin, env, cookieName: config.cookieName }
}

export interface Gateway { name: string, url: string, pid: number, stop: (graceMs?: number) => Promise<void> }

export async function startGateway (plan: GatewayPlan, execArgv: string[] = []): Promise<Gateway> {
  const c = await startNodeChild('gateway-server.ts', { env: { BENCH_GATEWAY_ENV: JSON.stringify(plan.env) }, execArgv })
  return { name: plan.name, url: plan.origin, pid: c.child.pid as number, stop: c.stop }
}

/** Signs in through the IdP like a user and returns the Cookie header that carries the session. */
export async function signedInCookie (plan: GatewayPlan, username = 'alice', password = 'alice'): Promise<string> {
  const browser = new Browser()
  const result = await signIn(browser, plan.origin + '/', username, password)
  await result.response.arrayBuffer()
  const value = browser.cookie(plan.origin, plan.cookieName)
  if (value === undefined) throw new Error(`no ${plan.cookieName} cookie after signing in at ${plan.origin} (HTTP ${result.response.status}, chain ${result.chain.join(' -> ')})`)
  return `${plan.cookieName}=${value}`
}

/** A Browser that adds up the time spent per host:port (to tell the IdP's share of a sign-in from the gateway's). */
export class TimedBrowser extends Browser {
  readonly perHost: Map<string, number>
  constructor (perHost: Map<string, number>) {
    super()
    this.perHost = perHost
  }

  override async request (url: string, init: BrowserRequestInit = {}): Promise<Response> {
    const start = performance.now()
    try {
      return await super.request(url, init)
    } finally {
      const host = new URL(url).host
      this.perHost.set(host, (this.perHost.get(host) ?? 0) + performance.now() - start)
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Load
// ---------------------------------------------------------------------------------------------

/** Latency histogram, 10 µs buckets up to 10 s: exact enough for "p99 added <= 2 ms", and mergeable across rounds. */
export class LatencyHistogram {
  static readonly RESOLUTION_MS = 0.01
  readonly buckets = new Uint32Array(1_000_000)
  count = 0

  record (ms: number): void {
    const i = Math.min(this.buckets.length - 1, Math.max(0, Math.floor(ms / LatencyHistogram.RESOLUTION_MS)))
    this.buckets[i] = (this.buckets[i] ?? 0) + 1
    this.count++
  }

  merge (other: LatencyHistogram): void {
    for (let i = 0; i < other.buckets.length; i++) {
      const n = other.buckets[i] ?? 0
      if (n !== 0) this.buckets[i] = (this.buckets[i] ?? 0) + n
    }
    this.count += other.count
  }

  /** The latency (ms, upper edge of its bucket) below which p percent of the samples fall. */
  percentile (p: number): number {
    if (this.count === 0) return NaN
    const rank = Math.ceil((p / 100) * this.count)
    let seen = 0
    for (let i = 0; i < this.buckets.length; i++) {
      seen += this.buckets[i] ?? 0
      if (seen >= rank) return (i + 1) * LatencyHistogram.RESOLUTION_MS
    }
    return this.buckets.length * LatencyHistogram.RESOLUTION_MS
  }
}

// ---------------------------------------------------------------------------------------------
// Other processes' CPU use: a busy machine (a test run, a build) makes any number meaningless
// ---------------------------------------------------------------------------------------------

const CLOCK_TICKS = 100 // USER_HZ: /proc's unit on Linux

export interface CpuSnapshot { at: number, busy: number, ours: number }

/** System-wide busy CPU ticks and those of this process and all its descendants; undefined without /proc. */
export function cpuSnapshot (): CpuSnapshot | undefined {
  try {
    const cpu = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1).map(Number)
    // user nice system idle iowait irq softirq steal ...: busy is all but idle and iowait.
    const busy = cpu.reduce((a, b) => a + b, 0) - (cpu[3] ?? 0) - (cpu[4] ?? 0)
    const ours = treeTicks(process.pid)
    return Number.isNaN(ours) ? undefined : { at: performance.now(), busy, ours }
  } catch {
    return undefined
  }
}

/** CPU ticks (user + system) a process has used so far; NaN when it cannot be read. */
export function processTicks (pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return Number(fields[11]) + Number(fields[12])
  } catch {
    return NaN
  }
}

interface ProcEntry { ppid: number, comm: string, ticks: number, childTicks: number }

/** Every process /proc shows: parent, command name, own CPU ticks and its reaped children's. */
function readProcs (): Map<number, ProcEntry> {
  const procs = new Map<number, ProcEntry>()
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    let stat: string
    try { stat = readFileSync(`/proc/${name}/stat`, 'utf8') } catch { continue }
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    procs.set(Number(name), {
      ppid: Number(fields[1]),
      comm: stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')),
      // utime + stime; cutime + cstime (children that exited and were waited for)
      ticks: Number(fields[11]) + Number(fields[12]),
      childTicks: Number(fields[13]) + Number(fields[14])
    })
  }
  return procs
}

function treeOf (root: number, procs: Map<number, ProcEntry>): number[] {
  const tree = [root]
  for (let i = 0; i < tree.length; i++) {
    for (const [pid, p] of procs) if (p.ppid === tree[i]) tree.push(pid)
  }
  return tree
}

/** The pids of every process below `root` (not `root` itself); empty without /proc. */
export function descendantsOf (root: number): number[] {
  try { return treeOf(root, readProcs()).slice(1) } catch { return [] }
}

/**
 * CPU ticks used so far by `root` and everything below it, those that have exited included
 * (their time moves to their parent's cutime/cstime when reaped): the measure for a server
 * that forks its workers and may start or stop some under load (Apache). NaN without /proc.
 */
export function treeTicks (root: number): number {
  try {
    const procs = readProcs()
    if (!procs.has(root)) return NaN
    return treeOf(root, procs).reduce((a, pid) => a + (procs.get(pid)?.ticks ?? 0) + (procs.get(pid)?.childTicks ?? 0), 0)
  } catch {
    return NaN
  }
}

/** The pid of a descendant of this process whose command name is `comm` (e.g. redis-server). */
export function descendantNamed (comm: string): number | undefined {
  try {
    const procs = readProcs()
    return treeOf(process.pid, procs).find(pid => pid !== process.pid && procs.get(pid)?.comm === comm)
  } catch {
    return undefined
  }
}

/** CPUs' worth of work done by processes that are not the bench's between two snapshots. */
export function otherCpu (a: CpuSnapshot | undefined, b: CpuSnapshot | undefined): number {
  if (a === undefined || b === undefined || b.at <= a.at) return NaN
  return Math.max(0, (b.busy - a.busy) - (b.ours - a.ours)) / CLOCK_TICKS / ((b.at - a.at) / 1000)
}

/**
 * Waits (at most maxSeconds) until other processes have used under `threshold` CPUs for two
 * consecutive seconds. Returns whether the machine got quiet.
 */
export async function waitForQuiet (maxSeconds: number, threshold = 0.1): Promise<boolean> {
  if (maxSeconds <= 0) return true
  const deadline = performance.now() + maxSeconds * 1000
  let quietSeconds = 0
  while (performance.now() < deadline) {
    const a = cpuSnapshot()
    if (a === undefined) return true
    await new Promise(resolve => setTimeout(resolve, 1000))
    quietSeconds = otherCpu(a, cpuSnapshot()) < threshold ? quietSeconds + 1 : 0
    if (quietSeconds >= 2) return true
  }
  return false
}

export interface LoadRun {
  /** CPU time the `serverPids` used per 2xx answer, in µs (NaN without /proc). */
  cpuUsPerRequest: number
  /** CPUs' worth of work by other processes during the run (0 on a quiet machine). */
  otherCpu: number
  ok: number
  non2xx: number
  errors: number
  timeouts: number
  seconds: number
  rps: number
  histogram: LatencyHistogram
}

/**
 * One autocannon run: GET url with these headers, 50 connections, for `seconds`. Only 2xx
 * answers count. `server`: the pids whose CPU is the server's, or a function reading its ticks
 * (treeTicks for a forking server).
 */
export async function runLoad (url: string, headers: Record<string, string>, seconds: number, connections = 50, server: number[] | (() => number) = [], overallRate?: number): Promise<LoadRun> {
  const histogram = new LatencyHistogram()
  let ok = 0
  const measured = typeof server === 'function' || server.length > 0
  const serverTicks = typeof server === 'function' ? server : (): number => server.reduce((a, pid) => a + processTicks(pid), 0)
  const ticksBefore = serverTicks()
  const before = cpuSnapshot()
  const instance = autocannon({ url, connections, duration: seconds, pipelining: 1, timeout: 10, headers, ...(overallRate !== undefined ? { overallRate } : {}) })
  instance.on('response', (_client: unknown, statusCode: number, _bytes: number, responseTime: number) => {
    if (statusCode >= 200 && statusCode < 300) { ok++; histogram.record(responseTime) }
  })
  const result = await instance
  const after = cpuSnapshot()
  const ticks = serverTicks() - ticksBefore
  return {
    cpuUsPerRequest: !measured || ok === 0 ? NaN : (ticks / CLOCK_TICKS) * 1e6 / ok,
    otherCpu: otherCpu(before, after),
    ok,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    seconds: result.duration,
    rps: ok / result.duration,
    histogram
  }
}

// ---------------------------------------------------------------------------------------------
// SSE
// ---------------------------------------------------------------------------------------------

/**
 * Opens `url` (an SSE stream of the bench upstream) and returns, per event, the time between
 * the upstream's write (its hrtime, in the event) and the arrival of the chunk holding it.
 */
export async function sseLatencies (url: string, headers: Record<string, string>, events: number, intervalMs: number): Promise<number[]> {
  const latencies: number[] = []
  const target = `${url}${url.includes('?') ? '&' : '?'}n=${events}&interval=${intervalMs}`
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => { req.destroy(new Error(`SSE stream ${url} did not finish in time (${latencies.length}/${events} events)`)) }, events * intervalMs + 15_000)
    const req = http.get(target, { agent: false, headers: { accept: 'text/event-stream', ...headers } }, (res) => {
      if (res.statusCode !== 200 || !String(res.headers['content-type']).startsWith('text/event-stream')) {
        clearTimeout(timer)
        res.resume()
        reject(new Error(`SSE ${url}: HTTP ${res.statusCode ?? '?'} ${String(res.headers['content-type'])}`))
        return
      }
      let buffer = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        const now = process.hrtime.bigint()
        buffer += chunk
        let end: number
        while ((end = buffer.indexOf('\n\n')) !== -1) {
          const event = buffer.slice(0, end)
          buffer = buffer.slice(end + 2)
          const m = /^data: (\d+)/m.exec(event)
          if (m?.[1] !== undefined) latencies.push(Number(now - BigInt(m[1])) / 1e6)
        }
      })
      res.on('end', () => { clearTimeout(timer); resolve() })
      res.on('error', (err) => { clearTimeout(timer); reject(err) })
    })
    req.on('error', (err) => { clearTimeout(timer); reject(err) })
  })
  if (latencies.length !== events) throw new Error(`SSE ${url}: received ${latencies.length} of ${events} events`)
  return latencies
}

// ---------------------------------------------------------------------------------------------
// Numbers and tables
// ---------------------------------------------------------------------------------------------

/** Percentile of a list of numbers (nearest rank). */
export function percentileOf (values: number[], p: number): number {
  if (values.length === 0) return NaN
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] as number
}

export function fmt (value: number | undefined, digits = 2): string {
  if (value === undefined || Number.isNaN(value)) return '-'
  return value.toFixed(digits)
}

export function fmtInt (value: number | undefined): string {
  if (value === undefined || Number.isNaN(value)) return '-'
  return Math.round(value).toLocaleString('en-US')
}

/** A plain-text table that is also a valid Markdown table. */
export function table (header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map(r => (r[i] ?? '').length)))
  const line = (cells: string[]): string => '| ' + cells.map((c, i) => i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0)).join(' | ') + ' |'
  const rule = '|' + widths.map((w, i) => i === 0 ? '-'.repeat(w + 2) : '-'.repeat(w + 1) + ':').join('|') + '|'
  return [line(header), rule, ...rows.map(line)].join('\n')
}

export function machine (): { cpu: string, nproc: number, node: string, memGiB: number, kernel: string } {
  let cpu = os.cpus()[0]?.model ?? 'unknown'
  try {
    const m = /^model name\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))
    if (m?.[1] !== undefined) cpu = m[1]
  } catch {}
  return { cpu, nproc: os.availableParallelism(), node: process.version, memGiB: Math.round(os.totalmem() / 2 ** 30), kernel: os.release() }
}
