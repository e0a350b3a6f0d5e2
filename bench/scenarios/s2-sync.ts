// S2: sync confirms, one message in flight: publish, wait for its confirm, publish the next.
import { performance } from 'node:perf_hooks'
import { Publisher } from '../../src/index.ts'
import { body, flags, type RunContext, type Scenario } from '../lib/common.ts'
import { acmConnect, amqplibConnect, cloudConnect, lapinConnection, rabbitConnect } from '../lib/peers.ts'

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
    async 'rabbitmq-client'(ctx) {
      const rabbit = await rabbitConnect()
      const pub = rabbit.createPublisher({ confirm: true })
      const envelope = { routingKey: ctx.queue, durable: flags.persistent, mandatory: flags.mandatory }
      await loop(ctx, () => pub.send(envelope, body))
      await pub.close()
      await rabbit.close()
    },
    async '@cloudamqp/amqp-client'(ctx) {
      const session = await cloudConnect()
      const q = await session.queue(ctx.queue, { durable: true })
      const options = { deliveryMode: flags.persistent ? 2 : 1, mandatory: flags.mandatory }
      await loop(ctx, () => q.publish(body, options))
      await session.stop()
    },
    async 'amqp-connection-manager'(ctx) {
      const manager = await acmConnect()
      const wrapper = manager.createChannel({ confirm: true })
      await wrapper.waitForConnect()
      const options = { persistent: flags.persistent, mandatory: flags.mandatory }
      await loop(ctx, () => wrapper.sendToQueue(ctx.queue, body, options))
      await wrapper.close()
      await manager.close()
    },
  },
}
