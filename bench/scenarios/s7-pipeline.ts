// S7: pipeline A → B with confirm-tied acks: a consumer on A (prefetch P) forwards each message to
// B through an async (or, for lapinmq, sync) publisher; A's message is acked only once B's copy is
// confirmed. "left" is A's depth after the peer stopped: acks not flushed before the close.

// Its pooled variant runs 4 such pipelines (a publisher and a consumer each) on a pool of 1, 2 or 4
// connections, the prefetch split between them (peers of that variant only).

import {
  deferred,
  flags,
  type PeerRun,
  pooledWorkers,
  poolPeer,
  poolSizes,
  type RunContext,
  type Scenario,
} from '../lib/common.ts'
import { ConnectionPool, Consumer, type Message, MessageStatus, Publisher } from '../lib/lapinmq.ts'
import { acmConnect, amqplibConnect, cloudConnect, lapinConnection, rabbitConnect } from '../lib/peers.ts'

/** Counts A's acked messages; the last one ends the measured part. */
function counter(ctx: RunContext): { acked: () => void; done: Promise<void> } {
  const all = deferred()
  const acked = () => {
    ctx.counts.confirmed++
    if (ctx.counts.confirmed === ctx.count) {
      ctx.marks.stop()
      all.resolve()
    }
  }
  return { acked, done: all.promise }
}

const publishOptions = { persistent: flags.persistent, mandatory: flags.mandatory }

/** One pipeline's task: forwards to B, acks A's message on B's confirm. A class: no closure per message. */
class Forward {
  readonly #ctx: RunContext
  readonly #publisher: Publisher
  readonly #acked: () => void

  constructor(ctx: RunContext, publisher: Publisher, acked: () => void) {
    this.#ctx = ctx
    this.#publisher = publisher
    this.#acked = acked
  }

  run(message: Message): MessageStatus {
    const { counts, marks } = this.#ctx
    const acked = this.#acked
    counts.received++
    counts.sent++
    const t0 = performance.now()
    this.#publisher.sendMessageToQueue(this.#ctx.sink, message.body, {
      ...publishOptions,
      callbacks: {
        ackCallback() {
          message.ack()
          marks.latency(t0)
          acked()
        },
        nackCallback() {
          counts.nacked++
          message.rejectRetry()
        },
      },
    })
    return MessageStatus.HANDLED_VIA_CALLBACK
  }
}

/**
 * The pooled variant: `pooledWorkers` pipelines (a publisher and a consumer, each placed by the pool
 * on its least-loaded connection), each with a share of the prefetch, on a pool of `size`.
 */
function pooledPipelines(size: number): PeerRun {
  return async (ctx) => {
    const { acked, done } = counter(ctx)
    const pool = new ConnectionPool({ size, url: ctx.url, name: 'bench-lapinmq-pool' })
    const prefetch = Math.max(1, Math.floor(ctx.prefetch / pooledWorkers))
    const publishers: Publisher[] = []
    const consumers: Consumer[] = []
    for (let i = 0; i < pooledWorkers; i++) {
      const publisher = new Publisher({
        kind: 'async',
        connection: pool,
        topology: { queues: [{ name: ctx.sink }] },
      })
      await publisher.start()
      publishers.push(publisher)
      const forward = new Forward(ctx, publisher, acked)
      consumers.push(
        new Consumer({
          queueName: ctx.queue,
          concurrency: prefetch,
          prefetch,
          connection: pool,
          taskFunction: (message) => forward.run(message),
        }),
      )
    }
    ctx.marks.start()
    // Placed in the order they start, publishers first (each pipeline's publisher is ready before its
    // consumer's first message): on a pool of 2, each connection has 2 publishers and 2 consumers.
    for (const consumer of consumers) await consumer.start()
    await done
    await Promise.all(consumers.map((c) => c.stop()))
    await Promise.all(publishers.map((p) => p.stop()))
    await pool.close()
  }
}

export const s7: Scenario = {
  id: 'S7',
  title: 'pipeline A → B, confirm-tied acks',
  headline: 'confirmed',
  sink: true,
  prefill: ({ count }) => count,
  // Nothing lost: every message of A acked after its copy reached B (A's leftovers are reported).
  verify: ({ counts, prefilled, inSink }) =>
    counts.nacked === 0 && counts.confirmed === prefilled && inSink === prefilled,
  variantOnlyPeers: poolSizes.map(poolPeer),
  peers: {
    async lapinmq(ctx) {
      const { marks } = ctx
      const { acked, done } = counter(ctx)
      // One connection for both, as the other peers do (lapinmq would default to two shared ones).
      const connection = lapinConnection(ctx.url)
      // Declared as lapinmq's users would: the publisher's topology declares B, the Consumer its
      // queue A (durable, no arguments), both as the runner declared them (its declare stays: the
      // other peers use the same queues), so the second declaration of each is a no-op.
      const publisher = new Publisher({
        kind: ctx.publisher ?? 'async',
        connection,
        topology: { queues: [{ name: ctx.sink }] },
      })
      await publisher.start()
      const forward = new Forward(ctx, publisher, acked)
      const consumer = new Consumer({
        queueName: ctx.queue,
        concurrency: ctx.prefetch,
        prefetch: ctx.prefetch,
        connection,
        taskFunction: (message) => forward.run(message),
      })
      marks.start()
      await consumer.start()
      await done
      await consumer.stop()
      await publisher.stop()
      await connection.close()
    },
    async amqplib(ctx) {
      const { counts, marks } = ctx
      const { acked, done } = counter(ctx)
      const model = await amqplibConnect(ctx.url)
      const source = await model.createChannel()
      const sink = await model.createConfirmChannel()
      await source.prefetch(ctx.prefetch)
      marks.start()
      await source.consume(
        ctx.queue,
        (msg) => {
          if (msg === null) return
          counts.received++
          counts.sent++
          const t0 = performance.now()
          // The window is bounded by the prefetch, so drain needs no waiting here.
          sink.sendToQueue(ctx.sink, msg.content, publishOptions, (err) => {
            if (err) {
              counts.nacked++
              source.nack(msg)
              return
            }
            source.ack(msg)
            marks.latency(t0)
            acked()
          })
        },
        { noAck: false },
      )
      await done
      await sink.close()
      await source.close()
      await model.close()
    },
    async 'rabbitmq-client'(ctx) {
      const { counts, marks } = ctx
      const { acked, done } = counter(ctx)
      const rabbit = await rabbitConnect(ctx.url)
      const pub = rabbit.createPublisher({ confirm: true })
      const envelope = { routingKey: ctx.sink, durable: flags.persistent, mandatory: flags.mandatory }
      marks.start()
      // The handler's promise settles the message: acked once the awaited publish is confirmed.
      const sub = rabbit.createConsumer(
        { queue: ctx.queue, queueOptions: { durable: true }, qos: { prefetchCount: ctx.prefetch } },
        async (msg) => {
          counts.received++
          counts.sent++
          const t0 = performance.now()
          await pub.send(envelope, msg.body)
          marks.latency(t0)
          queueMicrotask(acked) // counted once the handler returned, i.e. the ack is on its way
        },
      )
      await done
      await sub.close()
      await pub.close()
      await rabbit.close()
    },
    async '@cloudamqp/amqp-client'(ctx) {
      const { counts, marks } = ctx
      const { acked, done } = counter(ctx)
      const session = await cloudConnect(ctx.url)
      const a = await session.queue(ctx.queue, { durable: true })
      const b = await session.queue(ctx.sink, { durable: true })
      const options = { deliveryMode: flags.persistent ? 2 : 1, mandatory: flags.mandatory }
      marks.start()
      // Acked after the callback's promise resolves, i.e. after B's publish is confirmed.
      const sub = await a.subscribe({ prefetch: ctx.prefetch }, async (msg) => {
        counts.received++
        counts.sent++
        const t0 = performance.now()
        await b.publish(msg.body, options)
        marks.latency(t0)
        queueMicrotask(acked)
      })
      await done
      await sub.cancel()
      await session.stop()
    },
    async 'amqp-connection-manager'(ctx) {
      const { counts, marks } = ctx
      const { acked, done } = counter(ctx)
      const manager = await acmConnect(ctx.url)
      const source = manager.createChannel({ confirm: false })
      const sink = manager.createChannel({ confirm: true })
      await Promise.all([source.waitForConnect(), sink.waitForConnect()])
      marks.start()
      await source.consume(
        ctx.queue,
        (msg) => {
          counts.received++
          counts.sent++
          const t0 = performance.now()
          sink.sendToQueue(ctx.sink, msg.content, publishOptions).then(
            () => {
              source.ack(msg)
              marks.latency(t0)
              acked()
            },
            () => {
              counts.nacked++
              source.nack(msg)
            },
          )
        },
        { prefetch: ctx.prefetch },
      )
      await done
      await sink.close()
      await source.close()
      await manager.close()
    },
    ...Object.fromEntries(poolSizes.map((size) => [poolPeer(size), pooledPipelines(size)])),
  },
}
