// The readers every section of the configuration is parsed with. A reader never throws: it
// records a problem (one line naming the variable and its fix, never echoing a secret) and
// returns the default, so every problem is reported at once, and a section with problems still
// has best-effort values the doctor can check the rest with.
import { isIP } from 'node:net'

export interface Problem {
  /** The variable the line is about. */
  variable: string
  /** One line: what is wrong and what to do. */
  message: string
}

/**
 * A line the gateway logs once at start (and the doctor shows) about a setting it accepts but
 * reads differently from LibreChat, or does not use: never silently.
 */
export interface Notice {
  variable: string
  level: 'info' | 'warn'
  /** One line: what the gateway does with the setting, and what to do if that is not wanted. */
  message: string
}

/** One section's values and the problems found reading them; with problems, the values are best effort. */
export interface Section<T> {
  values: T
  problems: Problem[]
  notices: Notice[]
}

export const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

export function isLoopbackHost (hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '')
  if (h === 'localhost' || h.endsWith('.localhost')) return true
  if (isIP(h) === 4) return h.startsWith('127.')
  return h === '::1'
}

/**
 * Reads variables from one environment and collects what is wrong with them. Every read a
 * section makes is unconditional, so that knownVariables() sees every name.
 */
export class EnvReader {
  readonly problems: Problem[] = []
  readonly notices: Notice[] = []
  private readonly env: NodeJS.ProcessEnv

  constructor (env: NodeJS.ProcessEnv) {
    this.env = env
  }

  problem (variable: string, message: string): void {
    this.problems.push({ variable, message })
  }

  notice (variable: string, level: Notice['level'], message: string): void {
    this.notices.push({ variable, level, message })
  }

  section<T> (values: T): Section<T> {
    return { values, problems: this.problems, notices: this.notices }
  }

  /** Trimmed; undefined when unset or blank. */
  str (name: string): string | undefined {
    const v = this.env[name]
    if (v === undefined) return undefined
    const t = v.trim()
    return t === '' ? undefined : t
  }

  /** '' (and a problem saying `what` to set it to) when unset. */
  required (name: string, what: string): string {
    const v = this.str(name)
    if (v === undefined) this.problem(name, `${name} is not set: ${what}.`)
    return v ?? ''
  }

  bool (name: string, def: boolean): boolean {
    const v = this.str(name)
    if (v === undefined) return def
    if (/^(true|1|yes|on)$/i.test(v)) return true
    if (/^(false|0|no|off)$/i.test(v)) return false
    this.problem(name, `${name} must be true or false (got "${v}").`)
    return def
  }

  int (name: string, def: number, min: number, max: number): number {
    const v = this.str(name)
    if (v === undefined) return def
    if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) {
      this.problem(name, `${name} must be a whole number from ${min} to ${max} (got "${v}").`)
      return def
    }
    return Number(v)
  }

  /**
   * A number of milliseconds written as LibreChat writes them: a number or an arithmetic
   * expression (`1000 * 60 * 60`, `(1000 * 60 * 60 * 24) * 7`), as its `math()` reads
   * SESSION_EXPIRY and OPENID_REUSE_MAX_SESSION_AGE_MS. Undefined when unset or not a
   * positive number (then with a problem).
   */
  milliseconds (name: string): number | undefined {
    const v = this.str(name)
    if (v === undefined) return undefined
    const ms = evaluateArithmetic(v)
    if (ms === undefined || !(ms > 0)) {
      this.problem(name, `${name} must be a number of milliseconds, or a product such as 1000 * 60 * 60 (got "${v}").`)
      return undefined
    }
    return ms
  }

  /** Comma-separated, each entry trimmed, blanks dropped. */
  list (name: string, def = ''): string[] {
    return (this.str(name) ?? def).split(',').map(s => s.trim()).filter(Boolean)
  }

  /** Separated by commas and/or whitespace (scope names never hold either). */
  words (name: string, def = ''): string[] {
    return (this.str(name) ?? def).split(/[\s,]+/).filter(Boolean)
  }

  /** One of `choices`, case-insensitive; `expected` says which in the problem ("one of a, b"). */
  oneOf<T extends string> (name: string, choices: readonly T[], def: T, expected: string): T {
    const v = (this.str(name) ?? def).toLowerCase()
    if ((choices as readonly string[]).includes(v)) return v as T
    this.problem(name, `${name} must be ${expected} (got "${v}").`)
    return def
  }

  /**
   * An absolute http(s) URL without credentials, `example` shown in the fix. `raw` is the
   * variable's value when the caller read it first (a required or defaulted one).
   */
  url (name: string, example: string, raw: string | undefined = this.str(name)): URL | undefined {
    if (raw === undefined || raw === '') return undefined
    // A URL never holds a space; the guide's placeholders do (and new URL() would accept them in a path).
    if (/\s/.test(raw)) {
      this.problem(name, `${name} contains spaces, so it still holds a placeholder; set it to an absolute URL such as ${example}.`)
      return undefined
    }
    let u: URL
    try {
      u = new URL(raw)
    } catch {
      this.problem(name, `${name} must be an absolute URL such as ${example} (got "${raw}").`)
      return undefined
    }
    if (u.protocol !== 'https:' && u.protocol !== 'http:') {
      this.problem(name, `${name} must start with https:// (got "${raw}").`)
      return undefined
    }
    if (u.username !== '' || u.password !== '') {
      this.problem(name, `${name} must not contain a user name or password.`)
      return undefined
    }
    return u
  }
}

/**
 * + - * / and parentheses over decimal numbers, or undefined for anything else. A small
 * parser rather than eval: the value comes from the environment.
 */
export function evaluateArithmetic (text: string): number | undefined {
  const tokens = text.match(/\d+(?:\.\d+)?|[-+*/()]|\S/g) ?? []
  let i = 0
  const peek = (): string | undefined => tokens[i]
  function primary (): number {
    const t = tokens[i++]
    if (t === '(') {
      const v = sum()
      if (tokens[i++] !== ')') throw new Error('unbalanced')
      return v
    }
    if (t === '-') return -primary()
    if (t !== undefined && /^\d/.test(t)) return Number(t)
    throw new Error('unexpected')
  }
  function product (): number {
    let v = primary()
    while (peek() === '*' || peek() === '/') v = tokens[i++] === '*' ? v * primary() : v / primary()
    return v
  }
  function sum (): number {
    let v = product()
    while (peek() === '+' || peek() === '-') v = tokens[i++] === '+' ? v + product() : v - product()
    return v
  }
  try {
    const v = sum()
    return i === tokens.length && tokens.length > 0 && Number.isFinite(v) ? v : undefined
  } catch {
    return undefined
  }
}
