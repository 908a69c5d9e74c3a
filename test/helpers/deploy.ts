// Readers for the deployment files (Dockerfile, .dockerignore, docker-compose.yml,
// config/.env.example), shared by test/deploy/. No Docker engine runs where the tests run, so
// these implement the small part of Docker's and Compose's rules that our files use, and
// fail loudly on anything else rather than guess.
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import path from 'node:path'
import { parse as parseYaml } from 'yaml'

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
export const read = (rel: string): string => readFileSync(path.join(ROOT, rel), 'utf8')

// ---------------------------------------------------------------------------------------------
// Dockerfile
// ---------------------------------------------------------------------------------------------

export interface Instruction {
  /** Upper-cased keyword: FROM, RUN, COPY, ... */
  keyword: string
  /** Everything after the keyword, continuation lines joined. */
  args: string
  line: number
}

export interface Stage {
  name: string | undefined
  index: number
  image: string
  instructions: Instruction[]
}

/** Instructions grouped by stage; `# syntax=` directives and comments dropped, `\` lines joined. */
export function parseDockerfile (text: string): Stage[] {
  const instructions: Instruction[] = []
  let pending = ''
  let startLine = 0
  const lines = text.split(/\r?\n/)
  lines.forEach((raw, i) => {
    const line = raw.trimEnd()
    if (pending === '' && /^\s*(#|$)/.test(line)) return
    // Comment lines inside a continued instruction are skipped, as Docker does.
    if (pending !== '' && /^\s*#/.test(line)) return
    if (pending === '') startLine = i + 1
    if (line.endsWith('\\')) {
      pending += line.slice(0, -1) + ' '
      return
    }
    const whole = (pending + line).trim()
    pending = ''
    const m = /^(\S+)\s*(.*)$/s.exec(whole)
    if (m === null) return
    instructions.push({ keyword: (m[1] as string).toUpperCase(), args: (m[2] as string).trim(), line: startLine })
  })
  if (pending !== '') throw new Error('Dockerfile ends inside a continued line')

  const stages: Stage[] = []
  for (const ins of instructions) {
    if (ins.keyword === 'FROM') {
      const m = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args)
      if (m === null) throw new Error(`Dockerfile line ${ins.line}: cannot read FROM ${ins.args}`)
      stages.push({ image: m[1] as string, name: m[2]?.toLowerCase(), index: stages.length, instructions: [] })
      continue
    }
    const current = stages[stages.length - 1]
    if (current === undefined) {
      if (ins.keyword === 'ARG') continue // global ARG before the first FROM
      throw new Error(`Dockerfile line ${ins.line}: ${ins.keyword} before FROM`)
    }
    current.instructions.push(ins)
  }
  return stages
}

/** `["a", "b"]` (exec form) or undefined for shell form. */
export function execForm (args: string): string[] | undefined {
  if (!args.startsWith('[')) return undefined
  const parsed: unknown = JSON.parse(args)
  if (!Array.isArray(parsed) || !parsed.every(x => typeof x === 'string')) throw new Error(`not a JSON string array: ${args}`)
  return parsed as string[]
}

export interface CopyArgs { from: string | undefined, flags: Record<string, string>, sources: string[], dest: string }

export function parseCopy (args: string): CopyArgs {
  const flags: Record<string, string> = {}
  let rest = args
  for (;;) {
    const m = /^--([a-z-]+)(?:=(\S+))?\s+/.exec(rest)
    if (m === null) break
    flags[m[1] as string] = m[2] ?? 'true'
    rest = rest.slice(m[0].length)
  }
  const parts = execForm(rest) ?? rest.split(/\s+/).filter(Boolean)
  if (parts.length < 2) throw new Error(`COPY needs a source and a destination: ${args}`)
  return { from: flags.from, flags, sources: parts.slice(0, -1), dest: parts[parts.length - 1] as string }
}

/** `ENV A=1 B="two words"` and the legacy `ENV A 1`. */
export function parseEnv (args: string): Record<string, string> {
  const out: Record<string, string> = {}
  if (!/^[A-Za-z_][A-Za-z0-9_]*=/.test(args)) {
    const m = /^(\S+)\s+(.*)$/.exec(args)
    if (m !== null) out[m[1] as string] = m[2] as string
    return out
  }
  const re = /([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\]|\\.)*"|'[^']*'|\S*)/g
  for (const m of args.matchAll(re)) {
    let v = m[2] as string
    if (v.startsWith('"')) v = v.slice(1, -1).replace(/\\(.)/g, '$1')
    else if (v.startsWith("'")) v = v.slice(1, -1)
    out[m[1] as string] = v
  }
  return out
}

/** The instructions of a stage with this keyword. */
export const all = (stage: Stage, keyword: string): Instruction[] => stage.instructions.filter(i => i.keyword === keyword)

// ---------------------------------------------------------------------------------------------
// .dockerignore
// ---------------------------------------------------------------------------------------------

function globToRegExp (pattern: string): RegExp {
  let re = ''
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string
    if (c === '*') {
      if (pattern[i + 1] === '*') {
        // `**` matches any number of directories (including none).
        i++
        if (pattern[i + 1] === '/') { i++; re += '(?:.*/)?' } else re += '.*'
      } else re += '[^/]*'
    } else if (c === '?') re += '[^/]'
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&')
  }
  return new RegExp('^' + re + '$')
}

/**
 * Docker's .dockerignore rules: patterns are relative to the context root, a pattern that
 * matches a directory excludes everything under it, `!` re-includes, the last match wins.
 */
export function dockerIgnore (text: string): (relPath: string) => boolean {
  const rules = text.split(/\r?\n/)
    .map(l => l.trim())
    .filter(l => l !== '' && !l.startsWith('#'))
    .map(l => {
      const negate = l.startsWith('!')
      const p = path.posix.normalize((negate ? l.slice(1) : l).trim()).replace(/^\/+/, '').replace(/\/+$/, '')
      return { negate, re: globToRegExp(p) }
    })
  return (relPath: string) => {
    const parts = path.posix.normalize(relPath).replace(/^\.\//, '').split('/')
    const prefixes = parts.map((_p, i) => parts.slice(0, i + 1).join('/'))
    let excluded = false
    for (const rule of rules) {
      if (prefixes.some(p => rule.re.test(p))) excluded = !rule.negate
    }
    return excluded
  }
}

// ---------------------------------------------------------------------------------------------
// docker-compose.yml
// ---------------------------------------------------------------------------------------------

export interface ComposeService {
  image?: string
  build?: unknown
  ports?: unknown[]
  expose?: unknown[]
  network_mode?: string
  env_file?: string | Array<string | { path: string }>
  environment?: Record<string, string | number | boolean | null> | string[]
  healthcheck?: { test?: string | string[], disable?: boolean }
  depends_on?: string[] | Record<string, { condition?: string }>
  networks?: string[] | Record<string, unknown>
  [key: string]: unknown
}

export interface ComposeFile {
  services: Record<string, ComposeService>
  networks?: Record<string, { internal?: boolean, external?: boolean } | null>
  volumes?: Record<string, unknown>
}

export function loadCompose (): ComposeFile {
  return parseYaml(read('docker-compose.yml')) as ComposeFile
}

/** A service's `environment:` as written (before interpolation), map or list form. */
export function environmentOf (service: ComposeService): Record<string, string> {
  const env = service.environment
  const out: Record<string, string> = {}
  if (env === undefined) return out
  if (Array.isArray(env)) {
    for (const entry of env) {
      const eq = entry.indexOf('=')
      if (eq === -1) out[entry] = '' // `- NAME` passes the value through from the shell
      else out[entry.slice(0, eq)] = entry.slice(eq + 1)
    }
    return out
  }
  for (const [k, v] of Object.entries(env)) out[k] = v === null ? '' : String(v)
  return out
}

export function envFilesOf (service: ComposeService): string[] {
  const f = service.env_file
  if (f === undefined) return []
  return (Array.isArray(f) ? f : [f]).map(x => typeof x === 'string' ? x : x.path)
}

export function networksOf (service: ComposeService): string[] {
  const n = service.networks
  if (n === undefined) return ['default']
  return Array.isArray(n) ? n : Object.keys(n)
}

export function dependsOf (service: ComposeService): Array<{ name: string, condition: string | undefined }> {
  const d = service.depends_on
  if (d === undefined) return []
  if (Array.isArray(d)) return d.map(name => ({ name, condition: undefined }))
  return Object.entries(d).map(([name, v]) => ({ name, condition: v?.condition }))
}

/** Compose interpolation: `$$`, `$NAME`, `${NAME}`, `${NAME:-default}`, `${NAME-default}`, `${NAME:?err}`, `${NAME?err}`. */
export function interpolate (value: string, vars: Record<string, string | undefined>): string {
  return value.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?)([-?])((?:[^{}]|\{[^{}]*\})*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g,
    (whole, name?: string, colon?: string, op?: string, word?: string, bare?: string) => {
      if (whole === '$$') return '$'
      if (bare !== undefined) return vars[bare] ?? ''
      const v = vars[name as string]
      const missing = colon === ':' ? v === undefined || v === '' : v === undefined
      if (op === undefined) return v ?? ''
      if (!missing) return v as string
      if (op === '-') return interpolate(word ?? '', vars)
      throw new Error(`compose: required variable ${String(name)} is missing: ${String(word)}`)
    })
}

// ---------------------------------------------------------------------------------------------
// config/.env.example
// ---------------------------------------------------------------------------------------------

export type Section = 'shared' | 'gateway' | 'librechat'

export interface EnvExampleEntry {
  name: string
  value: string
  /** false for an optional setting written as `# NAME=default`. */
  active: boolean
  section: Section | undefined
  /** The comment line right above, without `# `. */
  comment: string | undefined
  line: number
}

/** Every `NAME=value` and `# NAME=value` line, with the section it sits in. */
export function parseEnvExample (text: string): EnvExampleEntry[] {
  const out: EnvExampleEntry[] = []
  let section: Section | undefined
  let previous: string | undefined
  text.split(/\r?\n/).forEach((line, i) => {
    const header = /^#\s*\[(shared|gateway|librechat)\]/.exec(line)
    if (header !== null) {
      section = header[1] as Section
      previous = undefined
      return
    }
    // Upper case, or the lower-case proxy variables (https_proxy) curl and undici read.
    const m = /^(#\s*)?([A-Z][A-Z0-9_]*|[a-z]+_proxy)=(.*)$/.exec(line)
    if (m !== null) {
      out.push({ name: m[2] as string, value: m[3] as string, active: m[1] === undefined, section, comment: previous, line: i + 1 })
      previous = undefined
      return
    }
    previous = line.startsWith('#') ? line.replace(/^#\s?/, '').trim() : undefined
  })
  return out
}
