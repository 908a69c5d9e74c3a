// A real redis-server on a free loopback port, for the Redis session store's tests and the
// bench's Redis row.
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { withFreePort } from './ports.js'

export interface RedisServer {
  url: string
  port: number
  stop: () => Promise<void>
  /** SIGSTOP: the connection stays open and nothing answers (a frozen or overloaded Redis). */
  freeze: () => void
  /** SIGCONT: it answers again, queued commands first. */
  thaw: () => void
}

export async function startRedis (): Promise<RedisServer> {
  return await withFreePort(startRedisOn)
}

/** redis-server on this port (a taken one fails with its "Address already in use" line). */
export async function startRedisOn (port: number): Promise<RedisServer> {
  let child: ChildProcess
  try {
    child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] })
  } catch {
    throw new Error('redis-server is not installed: run `npm run test:setup` or apt-get install redis-server')
  }
  // Ready when it says so on stdout; an early exit or spawn error fails loudly, with its output
  // (a taken port says "Address already in use" there, and is retried on another).
  await new Promise<void>((resolve, reject) => {
    let out = ''
    child.once('error', () => reject(new Error('redis-server is not installed: run `npm run test:setup` or apt-get install redis-server')))
    child.once('exit', code => reject(new Error(`redis-server exited with ${String(code)}: ${out}`)))
    child.stderr?.on('data', (d: Buffer) => { out += d.toString() })
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString()
      if (out.includes('Ready to accept connections')) resolve()
    })
  })
  child.removeAllListeners('exit')
  return {
    url: `redis://127.0.0.1:${port}/0`,
    port,
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
