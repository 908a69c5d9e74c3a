// Clients that hold connections without finishing anything: headers sent a byte at a time or
// not at all (slowloris), a kept-alive connection left idle. The gateway's own server closes
// them (HEADERS_TIMEOUT_SECONDS, KEEP_ALIVE_TIMEOUT_SECONDS, set small here), while a request
// body still being uploaded and a response still streaming keep no timeout at all. Raw sockets,
// and every wait is on an event: a "canary" connection that the server closes for the same
// timeout tells the test that the timeout has passed.
import t from 'tap'
import { stackWithLibreChat } from '../helpers/librechat.js'
import { rawConnect, hasWholeResponse, type RawConnection } from '../helpers/sockets.js'

const SMALL = { HEADERS_TIMEOUT_SECONDS: '1', KEEP_ALIVE_TIMEOUT_SECONDS: '1' }

/** Resolves once both timeouts have certainly passed for connections older than this call. */
async function bothTimeoutsPassed (port: number): Promise<void> {
  // Unfinished headers, closed by the headers timeout.
  const slow = await rawConnect(port)
  slow.socket.write('GET /healthz HTTP/1.1\r\nHost: gateway\r\n')
  // One answered request, then idle: closed by the keep-alive timeout.
  const idle = await rawConnect(port)
  idle.socket.write('GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n')
  await idle.until(hasWholeResponse)
  await Promise.all([slow.closed, idle.closed])
}

t.test('a client that sends part of its headers and then nothing is closed at the headers timeout', async t => {
  const { stack, port } = await stackWithLibreChat({ HEADERS_TIMEOUT_SECONDS: '1', KEEP_ALIVE_TIMEOUT_SECONDS: '3600' })
  t.teardown(() => stack.close())
  const slow = await rawConnect(port)
  slow.socket.write('GET /c/new HTTP/1.1\r\nHost: gateway\r\nAccept: text/ht')
  const received = await slow.closed
  t.match(received, /^(HTTP\/1\.1 408 [\s\S]*)?$/, 'closed, with a 408 or nothing')
})

t.test('a connection that never sends a byte is closed at the headers timeout', async t => {
  const { stack, port } = await stackWithLibreChat({ HEADERS_TIMEOUT_SECONDS: '1', KEEP_ALIVE_TIMEOUT_SECONDS: '3600' })
  t.teardown(() => stack.close())
  const silent = await rawConnect(port)
  const received = await silent.closed
  t.match(received, /^(HTTP\/1\.1 408 [\s\S]*)?$/, 'closed, with a 408 or nothing')
})

t.test('an idle kept-alive connection is closed at the keep-alive timeout', async t => {
  const { stack, port } = await stackWithLibreChat({ HEADERS_TIMEOUT_SECONDS: '3600', KEEP_ALIVE_TIMEOUT_SECONDS: '1' })
  t.teardown(() => stack.close())
  const idle = await rawConnect(port)
  idle.socket.write('GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n')
  const answer = await idle.until(hasWholeResponse)
  t.match(answer, /^HTTP\/1\.1 200 /)
  t.match(answer, /\r\nkeep-alive: timeout=1\r\n/i, 'the client is told the timeout')
  await idle.closed
  t.pass('closed by the gateway')
})

t.test('a slow upload, paused longer than both timeouts, is not cut', async t => {
  const { stack, lc, port, cookie } = await stackWithLibreChat(SMALL)
  t.teardown(() => stack.close())
  const up: RawConnection = await rawConnect(port)
  up.socket.write(`POST /api/files HTTP/1.1\r\nHost: gateway\r\nCookie: ${cookie}\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n`)
  const piece = 'x'.repeat(1000)
  for (let i = 0; i < 3; i++) {
    up.socket.write(`${piece.length.toString(16)}\r\n${piece}\r\n`)
    await bothTimeoutsPassed(port)
  }
  up.socket.write('0\r\n\r\n')
  const answer = await up.until(hasWholeResponse)
  t.match(answer, /^HTTP\/1\.1 200 /)
  t.match(answer, /\{"bytes":3000\}/, 'the whole body arrived upstream')
  t.same(lc.uploadedBytes, [3000])
})

t.test('a long SSE stream, quiet for longer than both timeouts between events, is not cut', async t => {
  const { stack, lc, port, cookie } = await stackWithLibreChat(SMALL)
  t.teardown(() => stack.close())
  const stream = await rawConnect(port)
  stream.socket.write(`GET /api/agents/chat/stream/1 HTTP/1.1\r\nHost: gateway\r\nCookie: ${cookie}\r\nAccept: text/event-stream\r\n\r\n`)
  await stream.until(/data: \{"n":0\}/)
  for (let n = 1; n < 5; n++) {
    await bothTimeoutsPassed(port)
    lc.nextEvent()
    await stream.until(new RegExp(`data: \\{"n":${n}\\}`))
  }
  await stream.until(/\r\n0\r\n\r\n$/)
  t.pass('all five events and the end of the stream arrived')
  t.notOk(stream.socket.destroyed, 'the connection is still open')
})
