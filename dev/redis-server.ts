// A real redis-server on a free loopback port, for the Redis session store's tests and the
// bench's Redis row.
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { withFreePort } from './ports.js'

export interface RedisServer {
  url: string
  port: number
  /** The process id (to stop it the way a crash would, or to tell it from the others). */
  pid: number
  /** True once the process has ended (stopped here, or by a test). */
  exited: () => boolean
  stop: () => Promise<void>
  /** SIGSTOP: the connection stays open and nothing answers (a frozen or overloaded Redis). */
  freeze: () => void
  /** SIGCONT: it answers again, queued commands first. */
  thaw: () => void
}

export interface RedisServerOptions {
  /** More redis-server arguments (`--replicaof`, `--cluster-enabled`, ACL users, ...). */
  args?: string[]
  /** Its working directory (where a Cluster node writes its nodes.conf). */
  cwd?: string
  /** The program: redis-server, or redis-sentinel with a configuration file in `args`. */
  program?: 'redis-server' | 'redis-sentinel'
  /** The line on stdout that says it is ready. */
  ready?: string
}

export async function startRedis (opts: RedisServerOptions = {}): Promise<RedisServer> {
  return await withFreePort(async port => await startRedisOn(port, opts))
}

/** redis-server on this port (a taken one fails with its "Address already in use" line). */
export async function startRedisOn (port: number, opts: RedisServerOptions = {}): Promise<RedisServer> {
  let child: ChildProcess
  const program = opts.program ?? 'redis-server'
  const ready = opts.ready ?? 'Ready to accept connections'
  const args = program === 'redis-server'
    ? ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...(opts.args ?? [])]
    : [...(opts.args ?? []), '--port', String(port)]
  try {
    child = spawn(program, args, { stdio: ['ignore', 'pipe', 'pipe'], ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}) })
  } catch {
    throw new Error('redis-server is not installed: run `npm run test:setup` or apt-get install redis-server')
  }
  // Ready when it says so on stdout; an early exit or spawn error fails loudly, with its output
  // (a taken port says "Address already in use" there, and is retried on another).
  await new Promise<void>((resolve, reject) => {
    let out = ''
    child.once('error', () => reject(new Error(`${program} is not installed: run \`npm run test:setup\` or apt-get install ${program}`)))
    child.once('exit', code => reject(new Error(`${program} exited with ${String(code)}: ${out}`)))
    child.stderr?.on('data', (d: Buffer) => { out += d.toString() })
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString()
      if (out.includes(ready)) resolve()
    })
  })
  child.removeAllListeners('exit')
  return {
    url: `redis://127.0.0.1:${port}/0`,
    port,
    pid: child.pid ?? 0,
    exited: () => child.exitCode !== null || child.signalCode !== null,
    freeze: () => { child.kill('SIGSTOP') },
    thaw: () => { child.kill('SIGCONT') },
    stop: async () => {
      child.kill('SIGCONT')
      if (child.exitCode !== null || child.signalCode !== null) return
      child.kill('SIGKILL')
      await once(child, 'exit')
    }
  }
}
