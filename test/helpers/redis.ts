// A real redis-server on a free loopback port, for the Redis session store tests; and the
// free ports themselves.
import { spawn, type ChildProcess } from 'node:child_process'
import { randomInt } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { once } from 'node:events'

export interface RedisServer {
  url: string
  port: number
  stop: () => Promise<void>
  /** SIGSTOP: the connection stays open and nothing answers (a frozen or overloaded Redis). */
  freeze: () => void
  /** SIGCONT: it answers again, queued commands first. */
  thaw: () => void
}

/** Ports from here up to the kernel's ephemeral range are drawn from. */
const LOWEST_PORT = 10_000
const ATTEMPTS = 5

/** The first port of the range the kernel picks from for listen(0) and outgoing connections. */
function ephemeralStart (): number {
  try {
    const first = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0])
    if (Number.isInteger(first) && first > 0) return first
  } catch {}
  return 32_768
}

/**
 * A port nothing listens on, for a server that must be told its port before it starts
 * (redis-server's --port; the gateway, whose DOMAIN_SERVER is registered at the IdP first).
 * A server that can report its port listens on 0 instead. Between this check and that
 * server's bind, another process may take the port: with listen(0) the kernel hands out ports
 * of its ephemeral range, as it does for every outgoing connection, and tests running side by
 * side make many. So the port is drawn below that range, where only an explicit bind can land,
 * and the caller retries on EADDRINUSE (withFreePort).
 */
export async function freePort (): Promise<number> {
  const below = ephemeralStart()
  for (let i = 0; i < 50; i++) {
    const port = below - LOWEST_PORT > 1000 ? randomInt(LOWEST_PORT, below) : 0
    const srv = createServer()
    const bound = await new Promise<boolean>((resolve, reject) => {
      srv.once('error', (err: NodeJS.ErrnoException) => { if (err.code === 'EADDRINUSE' || err.code === 'EACCES') resolve(false); else reject(err) })
      srv.listen(port, '127.0.0.1', () => resolve(true))
    })
    if (!bound) continue
    const chosen = (srv.address() as { port: number }).port
    srv.close()
    await once(srv, 'close')
    return chosen
  }
  throw new Error('no free loopback port found in 50 tries')
}

/** An error, or a process's output, that says the port was taken. */
export function isAddressInUse (errOrText: unknown): boolean {
  const text = errOrText instanceof Error ? `${(errOrText as NodeJS.ErrnoException).code ?? ''} ${errOrText.message}` : String(errOrText)
  return /EADDRINUSE|address already in use/i.test(text)
}

/** start(port) on a free port, again on another one if the port was taken meanwhile. */
export async function withFreePort<T> (start: (port: number) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort()
    try {
      return await start(port)
    } catch (err) {
      if (attempt < ATTEMPTS && isAddressInUse(err)) continue
      throw err
    }
  }
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
