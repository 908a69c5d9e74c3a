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

/** A word longer than a line (a URL) in pieces that fit, broken after a `/` where one is near the end. */
function pieces (word: string, width: number): string[] {
  const out: string[] = []
  let rest = word
  while ([...rest].length > width) {
    const head = rest.slice(0, width)
    const slash = head.lastIndexOf('/')
    const cut = slash > width / 2 ? slash + 1 : width
    out.push(rest.slice(0, cut))
    rest = rest.slice(cut)
  }
  return [...out, rest]
}

/** Words of `text` in lines of at most `width` columns. */
function wrap (text: string, width: number): string[] {
  const lines: string[] = []
  let line = ''
  for (const word of text.split(' ').flatMap(w => pieces(w, width))) {
    if (word === '') continue
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line)
      line = word
    } else {
      line = line === '' ? word : `${line} ${word}`
    }
  }
  if (line !== '') lines.push(line)
  return lines
}

const INDENT = '      '

/**
 * The report as a terminal shows it: each finding wrapped to `width` columns, its fix on the
 * lines below after an arrow, and a summary line last that says what to do first.
 */
export function renderReport (findings: readonly Finding[], secrets: readonly string[] = [], width = 80): string {
  const out: string[] = []
  for (const f of findings) {
    const [, what = '', fix = ''] = /^\S+ (.*?) — (.*)$/s.exec(formatFinding(f, secrets)) ?? []
    const head = wrap(what, width - INDENT.length)
    out.push(`${f.level.padEnd(INDENT.length - 1)} ${head[0] ?? ''}`, ...head.slice(1).map(l => INDENT + l))
    if (fix !== '' && fix !== 'nothing to do') out.push(...wrap(fix, width - INDENT.length - 2).map((l, i) => `${INDENT}${i === 0 ? '→' : ' '} ${l}`))
  }
  out.push('', ...wrap(summary(findings), width))
  return out.join('\n') + '\n'
}

/** One line: how many errors and warnings, and which to fix first. */
export function summary (findings: readonly Finding[]): string {
  const errors = findings.filter(f => f.level === 'ERROR').length
  const warnings = findings.filter(f => f.level === 'WARN').length
  const count = (n: number, what: string): string => `${n} ${what}${n === 1 ? '' : 's'}`
  if (errors > 0) return `${count(errors, 'error')}, ${count(warnings, 'warning')}: fix the errors first (the gateway will not start or sign anyone in until they are fixed)`
  if (warnings > 0) return `no errors, ${count(warnings, 'warning')}: the gateway can run; read the warnings before going live`
  return `all ${findings.length} checks passed`
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
