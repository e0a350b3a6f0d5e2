// S5: consume a prefilled queue with prefetch P and a task of 0 ms, 1 ms waiting (a timer) or 1 ms
// of CPU, acking each message once its task is done. Measured from the first message to the last.
// Model: min(C / t, P / (t + round trip), ceiling), C = concurrency (1 for CPU-bound tasks).
import { deferred, type PeerRun, type RunContext, type Scenario } from '../lib/common.ts'
import { consumers } from '../lib/consume.ts'

function consumeAll(open: (typeof consumers)[string]): PeerRun {
  return async (ctx: RunContext) => {
    const all = deferred()
    const consuming = await open(ctx, () => {
      if (ctx.counts.received++ === 0) ctx.marks.start()
      if (ctx.counts.received === ctx.count) {
        ctx.marks.stop()
        all.resolve()
      }
    })
    await all.promise
    await consuming.close()
  }
}

export const s5: Scenario = {
  id: 'S5',
  title: 'consume a prefilled queue',
  headline: 'received',
  prefill: ({ count }) => count,
  verify: ({ counts, prefilled, left }) => counts.received === prefilled && left === 0,
  peers: Object.fromEntries(Object.entries(consumers).map(([name, open]) => [name, consumeAll(open)])),
}
