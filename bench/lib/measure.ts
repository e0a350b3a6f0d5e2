// Per-run measurements: wall time, confirm latency histogram, client CPU (process.cpuUsage),
// broker CPU (/proc/<beam.smp pid>/stat, read only), event-loop delay.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs'
import { createHistogram, monitorEventLoopDelay, performance } from 'node:perf_hooks'
import type { Marks } from './common.ts'

const clockTicksPerSecond = 100 // USER_HZ on Linux

/** The pid of the beam.smp that listens on the broker's AMQP port, or undefined (not Linux, no access). */
export function findBrokerPid(port: number): number | undefined {
  try {
    const hexPort = `:${port.toString(16).toUpperCase().padStart(4, '0')}`
    const inodes = new Set<string>()
    for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
      for (const line of readFileSync(file, 'utf8').split('\n').slice(1)) {
        const f = line.trim().split(/\s+/)
        if (f[1]?.endsWith(hexPort) && f[3] === '0A' && f[9]) inodes.add(`socket:[${f[9]}]`)
      }
    }
    for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
      try {
        if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() !== 'beam.smp') continue
        for (const fd of readdirSync(`/proc/${pid}/fd`)) {
          if (inodes.has(readlinkSync(`/proc/${pid}/fd/${fd}`))) return Number(pid)
        }
      } catch {
        // a process that went away, or one we may not read
      }
    }
  } catch {
    // no /proc
  }
  return undefined
}

/** utime + stime of a process, in µs. */
function processCpu(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return ((Number(f[11]) + Number(f[12])) * 1e6) / clockTicksPerSecond
  } catch {
    return Number.NaN
  }
}

/** Latency percentiles in µs (PerfTest's min/p50/p75/p95/p99). */
export interface Percentiles {
  min: number
  p50: number
  p75: number
  p95: number
  p99: number
  count: number
}

function percentiles(h: ReturnType<typeof createHistogram>): Percentiles {
  const at = (p: number) => (h.count ? h.percentile(p) : Number.NaN)
  return {
    min: h.count ? h.min : Number.NaN,
    p50: at(50),
    p75: at(75),
    p95: at(95),
    p99: at(99),
    count: h.count,
  }
}

export interface Sample {
  elapsedMs: number
  clientCpuUs: number
  brokerCpuUs: number
  latencyUs: Percentiles
  consumerLatencyUs: Percentiles
  eventLoopDelayP99Ms: number
  peakRssMB: number
}

/** Marks for one run; sample() after the run tells what was measured between start() and stop(). */
export function createMarks(brokerPid: number | undefined): Marks & { sample(): Sample } {
  const histogram = createHistogram()
  const consumer = createHistogram()
  const eld = monitorEventLoopDelay({ resolution: 10 })
  let t0 = 0
  let t1 = 0
  let cpu0: NodeJS.CpuUsage = { user: 0, system: 0 }
  let cpu = { user: 0, system: 0 }
  let broker0 = 0
  let broker = 0
  let peakRss = 0
  const rss = () => {
    peakRss = Math.max(peakRss, process.memoryUsage.rss())
  }
  let rssTimer: NodeJS.Timeout | undefined
  return {
    start() {
      eld.enable()
      rss()
      rssTimer = setInterval(rss, 250)
      rssTimer.unref()
      broker0 = processCpu(brokerPid)
      cpu0 = process.cpuUsage()
      t0 = performance.now()
    },
    stop() {
      if (t1 !== 0 || t0 === 0) return
      t1 = performance.now()
      cpu = process.cpuUsage(cpu0)
      broker = processCpu(brokerPid) - broker0
      eld.disable()
      clearInterval(rssTimer)
      rss()
    },
    latency(start: number) {
      histogram.record(Math.max(1, Math.round((performance.now() - start) * 1000)))
    },
    consumerLatency(start: number) {
      consumer.record(Math.max(1, Math.round((performance.now() - start) * 1000)))
    },
    sample() {
      return {
        elapsedMs: t1 - t0,
        clientCpuUs: cpu.user + cpu.system,
        brokerCpuUs: broker,
        latencyUs: percentiles(histogram),
        consumerLatencyUs: percentiles(consumer),
        // No sample at all: not one timer fired, the loop was blocked the whole run.
        eventLoopDelayP99Ms: eld.count ? eld.percentile(99) / 1e6 : t1 - t0,
        peakRssMB: peakRss / 2 ** 20,
      }
    },
  }
}
