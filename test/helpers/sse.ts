// Reads a server-sent event stream as a browser would, event by event, calling `onEvent` with
// each event's `n` as it arrives, until `count` events are seen or the stream ends. Tests whose
// upstream writes the next event only after the previous one was seen stall here if anything on
// the way buffers.
export async function readEvents (reader: ReadableStreamDefaultReader<Uint8Array>, count: number, onEvent: (n: number, seen: number) => void = () => {}): Promise<number[]> {
  const decoder = new TextDecoder()
  let buffered = ''
  const seen: number[] = []
  while (seen.length < count) {
    const { value, done } = await reader.read()
    if (done) break
    buffered += decoder.decode(value, { stream: true })
    let i: number
    while ((i = buffered.indexOf('\n\n')) !== -1) {
      const n = (JSON.parse(buffered.slice(6, i)) as { n: number }).n
      seen.push(n)
      buffered = buffered.slice(i + 2)
      onEvent(n, seen.length)
    }
  }
  return seen
}
