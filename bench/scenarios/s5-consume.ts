// S5: consume a prefilled queue with prefetch P and a no-op task, acking each message.
import { Consumer, MessageStatus } from '../../src/index.ts'
import { deferred, type RunContext, type Scenario } from '../lib/common.ts'
import { acmConnect, amqplibConnect, cloudConnect, lapinConnection, rabbitConnect } from '../lib/peers.ts'

/** Counts a handled message; the last one ends the measured part. */
function counter(ctx: RunContext): { handled: () => void; done: Promise<void> } {
  const all = deferred()
  const handled = () => {
    if (++ctx.counts.received === ctx.count) {
      ctx.marks.stop()
      all.resolve()
    }
  }
  return { handled, done: all.promise }
}

export const s5: Scenario = {
  id: 'S5',
  title: 'consume a prefilled queue, no-op task',
  prefill: ({ count }) => count,
  peers: {
    async lapinmq(ctx) {
      const { handled, done } = counter(ctx)
      const connection = lapinConnection()
      const consumer = new Consumer({
        queueName: ctx.queue,
        concurrency: ctx.prefetch,
        prefetch: ctx.prefetch,
        connection,
        taskFunction: () => {
          handled()
          return MessageStatus.SUCCESS
        },
      })
      ctx.marks.start()
      await consumer.start()
      await done
      await consumer.stop()
      await connection.close()
    },
    async amqplib(ctx) {
      const { handled, done } = counter(ctx)
      const model = await amqplibConnect()
      const ch = await model.createChannel()
      await ch.prefetch(ctx.prefetch)
      ctx.marks.start()
      await ch.consume(
        ctx.queue,
        (msg) => {
          if (msg === null) return
          ch.ack(msg)
          handled()
        },
        { noAck: false },
      )
      await done
      await ch.close()
      await model.close()
    },
    async 'rabbitmq-client'(ctx) {
      const { handled, done } = counter(ctx)
      const rabbit = await rabbitConnect()
      ctx.marks.start()
      const sub = rabbit.createConsumer(
        { queue: ctx.queue, queueOptions: { durable: true }, qos: { prefetchCount: ctx.prefetch } },
        () => handled(), // returning nothing acks
      )
      await done
      await sub.close()
      await rabbit.close()
    },
    async '@cloudamqp/amqp-client'(ctx) {
      const { handled, done } = counter(ctx)
      const session = await cloudConnect()
      const q = await session.queue(ctx.queue, { durable: true })
      ctx.marks.start()
      const sub = await q.subscribe({ prefetch: ctx.prefetch }, () => handled()) // acked on return
      await done
      await sub.cancel()
      await session.stop()
    },
    async 'amqp-connection-manager'(ctx) {
      const { handled, done } = counter(ctx)
      const manager = await acmConnect()
      const wrapper = manager.createChannel({ confirm: false })
      await wrapper.waitForConnect()
      ctx.marks.start()
      await wrapper.consume(
        ctx.queue,
        (msg) => {
          wrapper.ack(msg)
          handled()
        },
        { prefetch: ctx.prefetch },
      )
      await done
      await wrapper.close()
      await manager.close()
    },
  },
}
