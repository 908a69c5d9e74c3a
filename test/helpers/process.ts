// A program started as its own process the way a container starts one: with exactly the
// environment given. tap's process-info hook adds its NODE_OPTIONS loader (a file inside this
// checkout) to every child's environment, even one built from scratch, so the program is
// started through `env -i`, which hands it only what is listed. Output is kept, and every
// failure about the process carries it.
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'

export interface ProcessOptions {
  cwd: string
  env: Record<string, string>
  uid?: number
  gid?: number
}

export interface Exit { code: number | null, signal: NodeJS.Signals | null }

export interface Proc {
  child: ChildProcess
  /** stdout and stderr so far, interleaved as they arrived. */
  output: () => string
  /** The JSON lines written to stdout so far. */
  logs: () => Array<Record<string, unknown>>
  exited: Promise<Exit>
  /** The first log line `match` accepts; rejects, with the output, if the process exits first. */
  waitForLog: (what: string, match: (line: Record<string, unknown>) => boolean) => Promise<Record<string, unknown>>
  /** Resolves once stdout and stderr hold `text`; rejects, with the output, if the process exits first. */
  waitForText: (text: string) => Promise<void>
  /** An Error naming the process's state, with its output attached. */
  failure: (message: string) => Error
  /** SIGKILL unless it has exited; resolves once it has. */
  kill: () => Promise<Exit>
}

const ENV = existsSync('/usr/bin/env') ? '/usr/bin/env' : 'env'
const TAIL = 6000

export function startProcess (command: string[], opts: ProcessOptions): Proc {
  const assignments = Object.entries(opts.env).map(([k, v]) => {
    if (k.includes('=') || k === '') throw new Error(`bad environment variable name: ${k}`)
    return `${k}=${v}`
  })
  const child = spawn(ENV, ['-i', ...assignments, ...command], {
    cwd: opts.cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(opts.uid !== undefined ? { uid: opts.uid } : {}),
    ...(opts.gid !== undefined ? { gid: opts.gid } : {})
  })
  let output = ''
  let partial = ''
  const logs: Array<Record<string, unknown>> = []
  const waiters = new Set<() => void>()
  child.stdout?.on('data', (d: Buffer) => {
    const text = d.toString()
    output += text
    partial += text
    const lines = partial.split('\n')
    partial = lines.pop() ?? ''
    for (const line of lines) {
      if (!line.startsWith('{')) continue
      try { logs.push(JSON.parse(line) as Record<string, unknown>) } catch {}
    }
    for (const w of waiters) w()
  })
  child.stderr?.on('data', (d: Buffer) => {
    output += d.toString()
    for (const w of waiters) w()
  })
  let exit: Exit | undefined
  const exited = new Promise<Exit>(resolve => {
    // 'close', not 'exit': by then all of its output has been read.
    child.once('close', (code: number | null, signal: NodeJS.Signals | null) => {
      exit = { code, signal }
      for (const w of waiters) w()
      resolve(exit)
    })
    child.once('error', (err: Error) => {
      output += `spawn failed: ${err.message}\n`
      exit = { code: null, signal: null }
      for (const w of waiters) w()
      resolve(exit)
    })
  })
  const failure = (message: string): Error => {
    const state = exit === undefined ? 'still running' : `exited with ${exit.signal ?? String(exit.code)}`
    return new Error(`${message} (the process ${state}); its output:\n${output.slice(-TAIL)}`)
  }
  const waitForLog = async (what: string, match: (line: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> =>
    await new Promise((resolve, reject) => {
      const check = (): void => {
        const found = logs.find(match)
        if (found !== undefined) { waiters.delete(check); resolve(found); return }
        if (exit !== undefined) { waiters.delete(check); reject(failure(`no log line ${what}`)) }
      }
      waiters.add(check)
      check()
    })
  const waitForText = async (text: string): Promise<void> =>
    await new Promise((resolve, reject) => {
      const check = (): void => {
        if (output.includes(text)) { waiters.delete(check); resolve(); return }
        if (exit !== undefined) { waiters.delete(check); reject(failure(`no output ${JSON.stringify(text)}`)) }
      }
      waiters.add(check)
      check()
    })
  return {
    child,
    output: () => output,
    logs: () => logs,
    exited,
    waitForLog,
    waitForText,
    failure,
    kill: async () => {
      if (exit === undefined) child.kill('SIGKILL')
      return await exited
    }
  }
}

/** The origin of Fastify's "Server listening at http://…" line. */
export async function listeningOrigin (proc: Proc): Promise<string> {
  const line = await proc.waitForLog('"Server listening at"', l => typeof l.msg === 'string' && l.msg.startsWith('Server listening at '))
  return (line.msg as string).slice('Server listening at '.length)
}
