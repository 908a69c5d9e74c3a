// Summarizes a V8 .cpuprofile (node --cpu-prof): self time per function and per package, and
// inclusive time per function (each function counted once per sample, however deep it recurses).
//   tsx bench/cpuprofile-summary.ts FILE.cpuprofile [--top=15] [--from=µs --to=µs] [--focus=fnA,fnB]
// --from/--to restrict the summary to samples taken in that window of the profile's clock
// (CLOCK_MONOTONIC in microseconds on Linux, the same as process.hrtime.bigint() / 1000n).
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

interface CallFrame { functionName: string, url: string, lineNumber: number, columnNumber: number, scriptId: string }
interface ProfileNode { id: number, callFrame: CallFrame, hitCount?: number, children?: number[] }
export interface CpuProfile { nodes: ProfileNode[], startTime: number, endTime: number, samples: number[], timeDeltas: number[] }

export interface Row { key: string, ms: number, pct: number }
export interface Summary {
  /** Milliseconds covered by the samples used, idle included. */
  totalMs: number
  idleMs: number
  /** Milliseconds of CPU work (everything but "(idle)"): the base of every percentage. */
  busyMs: number
  samples: number
  windowApplied: boolean
  self: Row[]
  packages: Row[]
  inclusive: Row[]
  /** Per focus function (by name): its inclusive time, and the self time of what runs under it. */
  focus: Array<{ name: string, ms: number, pct: number, under: Row[] }>
  /** Each busy sample counted once, in the first stage that has one of its functions on the stack. */
  stages: Row[]
}

/** A stage of the request: a label and the function names that mark it (first match wins). */
export type Stage = [label: string, functionNames: string[]]

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')

/** `node_modules/@fastify/session/lib/session.js` → `@fastify/session`; src files → `gateway (src/)`. */
export function packageOf (url: string, functionName: string): string {
  if (url === '') return functionName.startsWith('(') ? functionName : '(V8/native builtins)'
  if (url.startsWith('node:')) return 'node (built-in modules)'
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url)
  if (m?.[1] !== undefined) return m[1]
  const file = url.replace(/^file:\/\//, '')
  if (file.startsWith(path.join(ROOT, 'src') + '/')) return 'gateway (src/)'
  if (file.startsWith(path.join(ROOT, 'bench') + '/')) return 'bench harness'
  return file
}

function location (frame: CallFrame): string {
  if (frame.url === '') return ''
  let file = frame.url.replace(/^file:\/\//, '')
  const nm = file.lastIndexOf('node_modules/')
  if (nm !== -1) file = file.slice(nm + 'node_modules/'.length)
  else if (file.startsWith(ROOT + '/')) file = file.slice(ROOT.length + 1)
  return `${file}:${frame.lineNumber + 1}`
}

function functionKey (frame: CallFrame): string {
  const name = frame.functionName === '' ? '(anonymous)' : frame.functionName
  const where = location(frame)
  return where === '' ? name : `${name}  ${where}`
}

export function summarize (profile: CpuProfile, opts: { top?: number, from?: number, to?: number, focus?: string[], stages?: Stage[] } = {}): Summary {
  const top = opts.top ?? 15
  const byId = new Map<number, ProfileNode>()
  const parent = new Map<number, number>()
  for (const node of profile.nodes) {
    byId.set(node.id, node)
    for (const child of node.children ?? []) parent.set(child, node.id)
  }
  // Sample i is taken at startTime + sum(timeDeltas[0..i]); it stands for the time until the next sample.
  const times: number[] = []
  let t = profile.startTime
  for (const delta of profile.timeDeltas) { t += delta; times.push(t) }
  const windowApplied = opts.from !== undefined && opts.to !== undefined &&
    times.some(x => x >= (opts.from as number) && x <= (opts.to as number))

  const self = new Map<string, number>()
  const packages = new Map<string, number>()
  const inclusive = new Map<string, number>()
  const focusNames = opts.focus ?? []
  const focusTotal = new Map<string, number>()
  const focusUnder = new Map<string, Map<string, number>>(focusNames.map(n => [n, new Map()]))
  const stageRules = opts.stages ?? []
  const stages = new Map<string, number>()
  let totalUs = 0
  let idleUs = 0
  let samples = 0
  for (let i = 0; i < profile.samples.length; i++) {
    const at = times[i] as number
    if (windowApplied && (at < (opts.from as number) || at > (opts.to as number))) continue
    const next = times[i + 1]
    const weight = next !== undefined ? next - at : (profile.timeDeltas[i] ?? 0)
    const node = byId.get(profile.samples[i] as number)
    if (node === undefined) continue
    samples++
    totalUs += weight
    if (node.callFrame.functionName === '(idle)') { idleUs += weight; continue }
    const key = functionKey(node.callFrame)
    self.set(key, (self.get(key) ?? 0) + weight)
    const pkg = packageOf(node.callFrame.url, node.callFrame.functionName)
    packages.set(pkg, (packages.get(pkg) ?? 0) + weight)
    const seen = new Set<string>()
    const seenNames = new Set<string>()
    for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
      const frame = (byId.get(id) as ProfileNode).callFrame
      if (frame.functionName === '(root)') break
      seenNames.add(frame.functionName)
      const k = functionKey(frame)
      if (seen.has(k)) continue
      seen.add(k)
      inclusive.set(k, (inclusive.get(k) ?? 0) + weight)
    }
    if (stageRules.length > 0) {
      const stage = stageRules.find(([, names]) => names.some(n => seenNames.has(n)))?.[0] ?? 'other'
      stages.set(stage, (stages.get(stage) ?? 0) + weight)
    }
    for (const name of focusNames) {
      if (!seenNames.has(name)) continue
      focusTotal.set(name, (focusTotal.get(name) ?? 0) + weight)
      const under = focusUnder.get(name) as Map<string, number>
      under.set(key, (under.get(key) ?? 0) + weight)
    }
  }
  const busyUs = totalUs - idleUs
  const rows = (m: Map<string, number>, n: number): Row[] => [...m.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([key, us]) => ({ key, ms: us / 1000, pct: busyUs === 0 ? 0 : (100 * us) / busyUs }))
  return {
    totalMs: totalUs / 1000,
    idleMs: idleUs / 1000,
    busyMs: busyUs / 1000,
    samples,
    windowApplied,
    self: rows(self, top),
    packages: rows(packages, top),
    inclusive: rows(inclusive, top * 3),
    focus: focusNames.map(name => {
      const us = focusTotal.get(name) ?? 0
      return { name, ms: us / 1000, pct: busyUs === 0 ? 0 : (100 * us) / busyUs, under: rows(focusUnder.get(name) as Map<string, number>, 8) }
    }),
    stages: rows(stages, stages.size)
  }
}

export function formatSummary (s: Summary, opts: { inclusiveFilter?: (key: string) => boolean, inclusiveTop?: number } = {}): string {
  const out: string[] = []
  const line = (r: Row): string => `${r.pct.toFixed(1).padStart(6)}%  ${r.ms.toFixed(0).padStart(7)} ms  ${r.key}`
  out.push(`${s.samples} samples, ${s.totalMs.toFixed(0)} ms, of which busy ${s.busyMs.toFixed(0)} ms (idle ${(100 * s.idleMs / s.totalMs).toFixed(1)}%)${s.windowApplied ? ', load window only' : ', whole profile'}; percentages are of busy time`)
  out.push('')
  out.push('Top functions by self time:')
  for (const r of s.self) out.push(line(r))
  out.push('')
  out.push('Self time by package:')
  for (const r of s.packages) out.push(line(r))
  out.push('')
  out.push('Inclusive time (function and everything it calls):')
  const keep = opts.inclusiveFilter ?? (() => true)
  const inc = s.inclusive.filter(r => keep(r.key)).slice(0, opts.inclusiveTop ?? 25)
  for (const r of inc) out.push(line(r))
  if (s.stages.length > 0) {
    out.push('')
    out.push('Stages (each busy sample counted once, in the first stage with one of its functions on the stack):')
    for (const r of s.stages) out.push(line(r))
  }
  if (s.focus.length > 0) {
    out.push('')
    out.push('Cost centers (inclusive; they can nest), with the self time under each:')
    for (const f of s.focus) {
      out.push(`${f.pct.toFixed(1).padStart(6)}%  ${f.ms.toFixed(0).padStart(7)} ms  ${f.name}`)
      for (const r of f.under) out.push(`          ${r.pct.toFixed(1).padStart(5)}%  ${r.key}`)
    }
  }
  return out.join('\n')
}

// CLI
if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const file = process.argv[2]
  if (file === undefined) {
    console.error('usage: tsx bench/cpuprofile-summary.ts FILE.cpuprofile [--top=15] [--from=µs --to=µs]')
    process.exit(2)
  }
  const arg = (name: string): number | undefined => {
    const a = process.argv.find(x => x.startsWith(`--${name}=`))
    return a === undefined ? undefined : Number(a.slice(name.length + 3))
  }
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile
  const focus = process.argv.find(x => x.startsWith('--focus='))?.slice('--focus='.length).split(',').filter(Boolean)
  console.log(formatSummary(summarize(profile, { top: arg('top'), from: arg('from'), to: arg('to'), focus })))
}
