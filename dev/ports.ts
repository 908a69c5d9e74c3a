// Free loopback ports for servers that must be told their port before they start, shared by the
// tests and the bench.
import { randomInt } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { once } from 'node:events'

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
