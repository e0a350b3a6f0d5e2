// S6: latency at a fixed rate below capacity: each peer's publisher (async confirms, window 1000)
// sends at `rate` msg/s with performance.now() in the body's first 8 bytes; each peer's consumer
// (prefetch 100, no-op task) records publish → delivery. Both in this process, on their own
// connections.
import { setTimeout as sleep } from 'node:timers/promises'
import type { PeerRun, RunContext, Scenario } from '../lib/common.ts'
import { consumers } from '../lib/consume.ts'
import { publishers, stampOf } from '../lib/publish.ts'

function publishAndConsume(name: string): PeerRun {
  const openConsumer = consumers[name]
  const openPublisher = publishers[name]
  if (!openConsumer || !openPublisher) throw new Error(`S6: no consumer or publisher for ${name}`)
  return async (ctx: RunContext) => {
    const { counts, marks } = ctx
    const consuming = await openConsumer(ctx, (body) => {
      marks.consumerLatency(stampOf(body))
      counts.received++
    })
    const publishing = await openPublisher(ctx)
    marks.start()
    await publishing.run()
    for (let i = 0; i < 500 && counts.received < counts.sent; i++) await sleep(10)
    marks.stop()
    await publishing.close()
    await consuming.close()
  }
}

export const s6: Scenario = {
  id: 'S6',
  title: 'latency at a fixed rate (publish → delivery)',
  headline: 'received',
  prefill: () => 0,
  verify: ({ counts, left }) =>
    counts.nacked === 0 && counts.sent === counts.confirmed && counts.received === counts.sent && left === 0,
  peers: Object.fromEntries(Object.keys(consumers).map((name) => [name, publishAndConsume(name)])),
}
