// Each peer's consumer, written the way its docs show, with prefetch `ctx.prefetch`, manual acks
// and the variant's task: none, 1 ms of waiting (a timer), or 1 ms of CPU (a busy loop). The ack
// goes once the task is done; `handled(body)` is called then. S5 and S6 use them.
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import type { RunContext, Task } from './common.ts'
import { Consumer, MessageStatus } from './lapinmq.ts'
import { acmConnect, amqplibConnect, cloudConnect, lapinConnection, rabbitConnect } from './peers.ts'

/** Runs the task; a promise only for the async one. */
export function runTask(task: Task | undefined): Promise<unknown> | undefined {
  if (task === 'async') return sleep(1)
  if (task === 'cpu') {
    const end = performance.now() + 1
    while (performance.now() < end) {
      // busy: 1 ms of CPU on the event loop
    }
  }
  return undefined
}

export interface Consuming {
  close(): Promise<void>
}

type Open = (ctx: RunContext, handled: (body: Uint8Array) => void) => Promise<Consuming>

export const consumers: Record<string, Open> = {
  /** lapinmq: concurrency = prefetch, the task's status decides the ack. */
  async lapinmq(ctx, handled) {
    const connection = lapinConnection(ctx.url)
    const consumer = new Consumer({
      queueName: ctx.queue,
      concurrency: ctx.prefetch,
      prefetch: ctx.prefetch,
      connection,
      taskFunction: (message) => {
        const task = runTask(ctx.task)
        if (task === undefined) {
          handled(message.body)
          return MessageStatus.SUCCESS
        }
        return task.then(() => {
          handled(message.body)
          return MessageStatus.SUCCESS
        })
      },
    })
    await consumer.start()
    return {
      async close() {
        await consumer.stop()
        await connection.close()
      },
    }
  },
  /** amqplib: a channel with prefetch, ack once the task is done. */
  async amqplib(ctx, handled) {
    const model = await amqplibConnect(ctx.url)
    const ch = await model.createChannel()
    await ch.prefetch(ctx.prefetch)
    await ch.consume(
      ctx.queue,
      (msg) => {
        if (msg === null) return
        const done = () => {
          ch.ack(msg)
          handled(msg.content)
        }
        const task = runTask(ctx.task)
        if (task === undefined) done()
        else void task.then(done)
      },
      { noAck: false },
    )
    return {
      async close() {
        await ch.close()
        await model.close()
      },
    }
  },
  /** rabbitmq-client: the handler's return (or its promise) acks. */
  async 'rabbitmq-client'(ctx, handled) {
    const rabbit = await rabbitConnect(ctx.url)
    const sub = rabbit.createConsumer(
      { queue: ctx.queue, queueOptions: { durable: true }, qos: { prefetchCount: ctx.prefetch } },
      (msg) => {
        const task = runTask(ctx.task)
        if (task === undefined) handled(msg.body)
        else return task.then(() => handled(msg.body))
      },
    )
    return {
      async close() {
        await sub.close()
        await rabbit.close()
      },
    }
  },
  /** @cloudamqp/amqp-client: subscribe with prefetch; acked when the callback (or its promise) returns. */
  async '@cloudamqp/amqp-client'(ctx, handled) {
    const session = await cloudConnect(ctx.url)
    const q = await session.queue(ctx.queue, { durable: true })
    const sub = await q.subscribe({ prefetch: ctx.prefetch }, (msg) => {
      const body = msg.body ?? new Uint8Array()
      const task = runTask(ctx.task)
      if (task === undefined) handled(body)
      else return task.then(() => handled(body))
    })
    return {
      async close() {
        await sub.cancel()
        await session.stop()
      },
    }
  },
  /** amqp-connection-manager: a channel wrapper's consume with prefetch, ack once the task is done. */
  async 'amqp-connection-manager'(ctx, handled) {
    const manager = await acmConnect(ctx.url)
    const wrapper = manager.createChannel({ confirm: false })
    await wrapper.waitForConnect()
    await wrapper.consume(
      ctx.queue,
      (msg) => {
        const done = () => {
          wrapper.ack(msg)
          handled(msg.content)
        }
        const task = runTask(ctx.task)
        if (task === undefined) done()
        else void task.then(done)
      },
      { prefetch: ctx.prefetch },
    )
    return {
      async close() {
        await wrapper.close()
        await manager.close()
      },
    }
  },
}
