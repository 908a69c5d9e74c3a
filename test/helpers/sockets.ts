// HTTP/1.1 written by hand over node:net, for tests about connections themselves (slow or
// silent clients, keep-alive, shutdown), where an HTTP client library would hide what matters.
import { connect, type Socket } from 'node:net'
import { once } from 'node:events'

export interface RawConnection {
  socket: Socket
  /** Everything received so far. */
  received: () => string
  /** Resolves once what was received matches; rejects if the connection closes first. */
  until: (what: RegExp | ((data: string) => boolean)) => Promise<string>
  /** Resolves when the connection is closed (by either side), with what was received. */
  closed: Promise<string>
}

export async function rawConnect (port: number, host = '127.0.0.1'): Promise<RawConnection> {
  const socket = connect(port, host)
  await once(socket, 'connect')
  let data = ''
  const waiters = new Set<() => void>()
  let isClosed = false
  socket.setEncoding('latin1')
  socket.on('data', (d: string) => { data += d; for (const w of waiters) w() })
  // A reset (ECONNRESET) is one way for the server to close: it ends up as 'close' too.
  socket.on('error', () => {})
  const closed = new Promise<string>(resolve => {
    socket.once('close', () => { isClosed = true; for (const w of waiters) w(); resolve(data) })
  })
  const until = async (what: RegExp | ((data: string) => boolean)): Promise<string> => await new Promise((resolve, reject) => {
    const matches = typeof what === 'function' ? what : (d: string) => what.test(d)
    const check = (): void => {
      if (matches(data)) { waiters.delete(check); resolve(data); return }
      if (isClosed) { waiters.delete(check); reject(new Error(`connection closed before ${String(what)}; received: ${JSON.stringify(data.slice(-2000))}`)) }
    }
    waiters.add(check)
    check()
  })
  return { socket, received: () => data, until, closed }
}

/** True once `data` holds (at least) one whole response: Content-Length or chunked. */
export function hasWholeResponse (data: string): boolean {
  const head = data.indexOf('\r\n\r\n')
  if (head === -1) return false
  const headers = data.slice(0, head + 2)
  const body = data.slice(head + 4)
  if (/\r\ntransfer-encoding: chunked\r\n/i.test(headers)) return /(^|\r\n)0\r\n\r\n/.test(body)
  const m = /\r\ncontent-length: (\d+)\r\n/i.exec(headers)
  return m !== null && body.length >= Number(m[1])
}
