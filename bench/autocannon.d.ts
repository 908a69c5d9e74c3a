// The subset of autocannon's programmatic API the bench uses (the package ships no types).
declare module 'autocannon' {
  import type { EventEmitter } from 'node:events'

  interface AutocannonOptions {
    url: string
    connections?: number
    duration?: number
    amount?: number
    pipelining?: number
    /** Requests per second across all connections (a fixed-rate load). */
    overallRate?: number
    timeout?: number
    method?: string
    headers?: Record<string, string>
  }

  interface Histogram {
    average: number
    mean: number
    stddev: number
    min: number
    max: number
    total: number
    p50: number
    p99: number
  }

  interface AutocannonResult {
    duration: number
    requests: Histogram
    latency: Histogram
    throughput: Histogram
    errors: number
    timeouts: number
    non2xx: number
    '2xx': number
    resets: number
    statusCodeStats: Record<string, { count: number }>
  }

  interface Instance extends EventEmitter, PromiseLike<AutocannonResult> {
    stop: () => void
  }

  function autocannon (opts: AutocannonOptions): Instance
  export default autocannon
  export type { AutocannonOptions, AutocannonResult, Instance }
}
