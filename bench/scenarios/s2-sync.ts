// S2: sync confirms, one message in flight: publish, wait for its confirm, publish the next.
import { performance } from 'node:perf_hooks'
import { Publisher } from '../../src/index.ts'
import { body, flags, type RunContext, type Scenario } from '../lib/common.ts'
import { amqplibConnect, lapinConnection, promiseSenders } from '../lib/peers.ts'

/** Sends until the deadline, one awaited send at a time. */
async function loop(ctx: RunContext, send: () => Promise<unknown>): Promise<void> {
  const { marks, counts } = ctx
  marks.start()
  const deadline = performance.now() + ctx.durationMs
  while (performance.now() < deadline) {
    const t0 = performance.now()
    counts.sent++
    await send()
    counts.confirmed++
    marks.latency(t0)
  }
  marks.stop()
}

export const s2: Scenario = {
  id: 'S2',
  title: 'sync confirms (1 in flight)',
  prefill: () => 0,
  peers: {
    async lapinmq(ctx) {
      const connection = lapinConnection()
      const publisher = new Publisher({ kind: 'sync', connection })
      await publisher.start()
      const options = { persistent: flags.persistent, mandatory: flags.mandatory }
      await loop(ctx, () => publisher.sendMessageToQueue(ctx.queue, body, options))
      await publisher.stop()
      await connection.close()
    },
    async amqplib(ctx) {
      const model = await amqplibConnect()
      const ch = await model.createConfirmChannel()
      const options = { persistent: flags.persistent, mandatory: flags.mandatory }
      await loop(
        ctx,
        () =>
          new Promise<void>((resolve, reject) => {
            ch.sendToQueue(ctx.queue, body, options, (err) => (err ? reject(err) : resolve()))
          }),
      )
      await ch.close()
      await model.close()
    },
    ...Object.fromEntries(
      Object.entries(promiseSenders).map(([peer, open]) => [
        peer,
        async (ctx: RunContext) => {
          const sender = await open(ctx.queue, body)
          await loop(ctx, sender.send)
          await sender.close()
        },
      ]),
    ),
  },
}
