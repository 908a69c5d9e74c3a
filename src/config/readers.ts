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

/** One section's values and the problems found reading them; with problems, the values are best effort. */
export interface Section<T> {
  values: T
  problems: Problem[]
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
  private readonly env: NodeJS.ProcessEnv

  constructor (env: NodeJS.ProcessEnv) {
    this.env = env
  }

  problem (variable: string, message: string): void {
    this.problems.push({ variable, message })
  }

  section<T> (values: T): Section<T> {
    return { values, problems: this.problems }
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
