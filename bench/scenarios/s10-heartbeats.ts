// S10 (minimal): heartbeats under CPU-bound tasks. Heartbeat 1 s; each task blocks the event loop
// for 2× that, on the main thread (no worker threads: that is the Consumer's `workerThreads`
// option, not used here). Counts what a blocked loop costs each peer: connections dropped by the broker for missed
// heartbeats, and messages redelivered because of it. Full mode only.
import { setTimeout as sleep } from 'node:timers/promises'
import amqplib from 'amqplib'
import { deferred, flags, type PeerRun, type RunContext, type Scenario } from '../lib/common.ts'
import { Consumer, Connection as LapinConnection, MessageStatus } from '../lib/lapinmq.ts'
import { rabbitConnect } from '../lib/peers.ts'

function block(ms: number): void {
  const end = performance.now() + ms
  while (performance.now() < end) {
    // CPU-bound task on the event loop
  }
}

/** Counts a delivery; the run ends once every prefilled message was handled, or at the deadline. */
function tracker(ctx: RunContext) {
  const all = deferred()
  return {
    handle(redelivered: boolean) {
      if (redelivered) ctx.counts.redelivered++
      block(ctx.blockMs ?? 2000)
      ctx.counts.received++
      if (ctx.counts.received - ctx.counts.redelivered >= ctx.count) all.resolve()
    },
    /** Until every message was handled once, or 3× the blocking time per message plus 10 s. */
    done: Promise.race([all.promise, sleep(ctx.count * 3 * (ctx.blockMs ?? 2000) + 10_000)]),
  }
}

const withHeartbeat = (url: string, heartbeat: number) => {
  const u = new URL(url)
  u.searchParams.set('heartbeat', String(heartbeat))
  return u.toString()
}

const peers: Record<string, PeerRun> = {
  async lapinmq(ctx) {
    const t = tracker(ctx)
    const connection = new LapinConnection({
      url: ctx.url,
      heartbeat: ctx.heartbeat ?? 1,
      name: 'bench-lapinmq',
    })
    connection.on('disconnected', (err) => {
      if (err) ctx.counts.connectionsLost++
    })
    connection.on('error', () => {})
    const consumer = new Consumer({
      queueName: ctx.queue,
      prefetch: ctx.prefetch,
      connection,
      taskFunction: (message) => {
        t.handle(message.redelivered)
        return MessageStatus.SUCCESS
      },
    })
    consumer.on('error', () => {})
    ctx.marks.start()
    await consumer.start()
    await t.done
    ctx.marks.stop()
    await consumer.stop().catch(() => {})
    await connection.close().catch(() => {})
  },
  async amqplib(ctx) {
    const t = tracker(ctx)
    const model = await amqplib.connect(withHeartbeat(ctx.url, ctx.heartbeat ?? 1), {
      noDelay: flags.noDelay,
    })
    let lost = false
    model.on('error', () => {})
    model.on('close', () => {
      lost = true
      ctx.counts.connectionsLost++
    })
    const ch = await model.createChannel()
    await ch.prefetch(ctx.prefetch)
    ctx.marks.start()
    await ch.consume(ctx.queue, (msg) => {
      if (msg === null) return
      t.handle(msg.fields.redelivered)
      if (!lost) ch.ack(msg)
    })
    // amqplib does not reconnect: a dropped connection ends its run.
    await Promise.race([t.done, new Promise<void>((resolve) => model.once('close', () => resolve()))])
    ctx.marks.stop()
    if (!lost) await model.close().catch(() => {})
  },
  async 'rabbitmq-client'(ctx) {
    const t = tracker(ctx)
    const rabbit = await rabbitConnect(withHeartbeat(ctx.url, ctx.heartbeat ?? 1))
    rabbit.on('error', () => {
      ctx.counts.connectionsLost++
    })
    ctx.marks.start()
    const sub = rabbit.createConsumer(
      { queue: ctx.queue, queueOptions: { durable: true }, qos: { prefetchCount: ctx.prefetch } },
      (msg) => t.handle(msg.redelivered),
    )
    await t.done
    ctx.marks.stop()
    await sub.close().catch(() => {})
    await rabbit.close().catch(() => {})
  },
}

export const s10: Scenario = {
  id: 'S10',
  title: 'heartbeats under CPU-bound tasks (heartbeat 1 s, tasks block 2 s)',
  headline: 'received',
  prefill: ({ count }) => count,
  // Every message handled, nothing left; redeliveries and lost connections are reported, not failed.
  verify: ({ counts, prefilled, left }) => counts.received - counts.redelivered >= prefilled && left === 0,
  peers,
}
