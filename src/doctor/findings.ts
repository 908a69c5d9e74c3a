// What the doctor says: one finding per line, `OK|WARN|ERROR <what> — <fix>`, never a secret.

export type Level = 'OK' | 'WARN' | 'ERROR'

export interface Finding {
  level: Level
  /** What was found, in plain words. */
  what: string
  /** What to do about it (for OK: what it means, or what to keep doing). */
  fix: string
}

export const ok = (what: string, fix: string): Finding => ({ level: 'OK', what, fix })
export const warn = (what: string, fix: string): Finding => ({ level: 'WARN', what, fix })
export const error = (what: string, fix: string): Finding => ({ level: 'ERROR', what, fix })

const oneLine = (s: string): string => s.replace(/\s*[\r\n]+\s*/g, ' ').trim()

/**
 * The printed line. `secrets` are values that must never be shown (client secret, session
 * secret, Redis password): any occurrence is masked, whatever produced the text.
 */
export function formatFinding (f: Finding, secrets: readonly string[] = []): string {
  let line = `${f.level} ${oneLine(f.what)} — ${oneLine(f.fix)}`
  for (const s of secrets) if (s.length >= 4) line = line.split(s).join('***')
  return line
}

export function hasErrors (findings: readonly Finding[]): boolean {
  return findings.some(f => f.level === 'ERROR')
}

/** A URL for display: user name and password removed (REDIS_URL may carry a password). */
export function redactUrl (raw: string): string {
  try {
    const u = new URL(raw)
    if (u.username === '' && u.password === '') return raw
    u.username = ''
    u.password = ''
    return u.href.replace(/^([a-z][a-z0-9+.-]*:\/\/)/i, '$1***@')
  } catch {
    return raw.replace(/\/\/[^/@]*@/, '//***@')
  }
}
