// S3: async confirms, a sliding window of W unconfirmed messages, publishing until the deadline.
import { once } from 'node:events'
import { performance } from 'node:perf_hooks'
import { Publisher } from '../../src/index.ts'
import { body, deferred, flags, type RunContext, type Scenario, Window } from '../lib/common.ts'
import { amqplibConnect, lapinConnection, promiseSenders } from '../lib/peers.ts'

/** For peers whose send returns a promise and that have no window of their own. */
async function windowed(ctx: RunContext, send: () => Promise<unknown>): Promise<void> {
  const { marks, counts } = ctx
  const window = new Window(ctx.window)
  const nacked = () => {
    counts.nacked++
    window.release()
  }
  marks.start()
  const deadline = performance.now() + ctx.durationMs
  while (performance.now() < deadline) {
    const full = window.acquire()
    if (full) await full
    const t0 = performance.now()
    counts.sent++
    send().then(() => {
      counts.confirmed++
      marks.latency(t0)
      window.release()
    }, nacked)
  }
  await window.idle()
  marks.stop()
}

export const s3: Scenario = {
  id: 'S3',
  title: 'async confirms, window W',
  prefill: () => 0,
  peers: {
    async lapinmq(ctx) {
      const { marks, counts } = ctx
      const connection = lapinConnection()
      const publisher = new Publisher({ kind: 'async', maxInFlight: ctx.window, connection })
      await publisher.start()
      const options = { persistent: flags.persistent, mandatory: flags.mandatory }
      // The window is lapinmq's own (maxInFlight, waitForRoom); this only waits for the last confirms.
      let outstanding = 0
      let ending = false
      const settled = deferred()
      const done = () => {
        if (--outstanding === 0 && ending) settled.resolve()
      }
      const confirmed = (t0: number) => () => {
        counts.confirmed++
        marks.latency(t0)
        done()
      }
      const nacked = () => {
        counts.nacked++
        done()
      }
      marks.start()
      const deadline = performance.now() + ctx.durationMs
      while (performance.now() < deadline) {
        await publisher.waitForRoom()
        counts.sent++
        outstanding++
        publisher.sendMessageToQueue(ctx.queue, body, options).then(confirmed(performance.now()), nacked)
      }
      ending = true
      if (outstanding > 0) await settled.promise
      marks.stop()
      await publisher.stop()
      await connection.close()
    },
    async amqplib(ctx) {
      const { marks, counts } = ctx
      const model = await amqplibConnect()
      const ch = await model.createConfirmChannel()
      const options = { persistent: flags.persistent, mandatory: flags.mandatory }
      const window = new Window(ctx.window)
      marks.start()
      const deadline = performance.now() + ctx.durationMs
      while (performance.now() < deadline) {
        const full = window.acquire()
        if (full) await full
        const t0 = performance.now()
        counts.sent++
        const writable = ch.sendToQueue(ctx.queue, body, options, (err) => {
          if (err) counts.nacked++
          else {
            counts.confirmed++
            marks.latency(t0)
          }
          window.release()
        })
        if (!writable) await once(ch, 'drain')
      }
      await window.idle()
      marks.stop()
      await ch.close()
      await model.close()
    },
    ...Object.fromEntries(
      Object.entries(promiseSenders).map(([peer, open]) => [
        peer,
        async (ctx: RunContext) => {
          const sender = await open(ctx.queue, body)
          await windowed(ctx, sender.send)
          await sender.close()
        },
      ]),
    ),
  },
}
