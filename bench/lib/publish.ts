// Each peer's publisher, written the way its docs show, publishing until the variant's deadline:
// with a window of `ctx.window` unconfirmed messages (0 = no confirms, where the peer has that
// mode), at a fixed rate when `ctx.rate` is set (S6, bodies stamped with performance.now()), and
// sampling RSS each second when `ctx.sampleRss` is set (S9). S1, S2, S3, S6, S8 and S9 use them.
import { once } from 'node:events'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import {
  ceilingPeer,
  deferred,
  flags,
  type JsonValue,
  jsonValue,
  type PeerRun,
  pooledWorkers,
  type RunContext,
  Window,
} from './common.ts'
import { ConnectionPool, Publisher } from './lapinmq.ts'
import { amqplibConnect, lapinConnection, promiseSenders } from './peers.ts'
import { RawClient } from './raw-client.ts'

/** A publisher opened by a peer: run() publishes until the deadline and waits for the confirms. */
export interface Publishing {
  run(): Promise<void>
  close(): Promise<void>
}

/**
 * The loop's clock: the deadline, the pace (S6), the body (stamped in S6), the object of the JSON
 * variant (a fresh one per send), RSS samples (S9).
 */
export interface Loop {
  more(): boolean
  pace(): Promise<void> | undefined
  body(): Buffer
  value(): JsonValue
}

export function loop(ctx: RunContext): Loop {
  const t0 = performance.now()
  const deadline = t0 + ctx.durationMs
  const rate = ctx.rate ?? 0
  let n = 0
  let id = 0
  let timer: NodeJS.Timeout | undefined
  if (ctx.sampleRss) {
    timer = setInterval(() => ctx.rss.push(Math.round(process.memoryUsage.rss() / 2 ** 20)), 1000)
  }
  return {
    more() {
      if (performance.now() < deadline) return true
      clearInterval(timer)
      return false
    },
    pace() {
      if (rate === 0) return undefined
      const wait = t0 + (n++ * 1000) / rate - performance.now()
      return wait > 0.5 ? sleep(wait) : undefined
    },
    body() {
      if (rate === 0) return ctx.body
      const b = Buffer.from(ctx.body)
      b.writeDoubleLE(performance.now(), 0)
      return b
    },
    value() {
      return jsonValue(++id)
    },
  }
}

/** The publish timestamp S6 writes into the first 8 bytes of a body. */
export function stampOf(body: Uint8Array): number {
  return Buffer.from(body.buffer, body.byteOffset, body.byteLength).readDoubleLE(0)
}

/** For the peers whose send returns a promise: a window of them (1000 writes when unconfirmed). */
async function windowed(
  ctx: RunContext,
  send: (body: Buffer | JsonValue) => Promise<unknown>,
): Promise<void> {
  const { marks, counts } = ctx
  const confirm = ctx.window > 0
  const json = ctx.json === true
  const window = new Window(ctx.window || 1000)
  const nacked = () => {
    counts.nacked++
    window.release()
  }
  const l = loop(ctx)
  while (l.more()) {
    const paced = l.pace()
    if (paced) await paced
    const full = window.acquire()
    if (full) await full
    const t0 = performance.now()
    counts.sent++
    send(json ? l.value() : l.body()).then(() => {
      if (confirm) {
        counts.confirmed++
        marks.latency(t0)
      }
      window.release()
    }, nacked)
  }
  await window.idle()
}

export const publishers: Record<string, (ctx: RunContext) => Promise<Publishing>> = {
  /**
   * lapinmq always confirms: its async publisher (window 1000) stands in for "no confirms" in S1.
   * It declares its queue itself (`topology`), as its users would, with the arguments the runner
   * declared it with (the runner's declare stays: it is the other peers' queue too), so the two
   * declarations agree and the second one is a no-op.
   */
  async lapinmq(ctx) {
    const { marks, counts } = ctx
    const connection = lapinConnection(ctx.url)
    const sync = ctx.publisher === 'sync'
    const topology = {
      queues: [{ name: ctx.queue, ...(ctx.queueArgs ? { arguments: ctx.queueArgs } : {}) }],
    }
    const publisher = sync
      ? new Publisher({ kind: 'sync', connection, topology })
      : new Publisher({ kind: 'async', maxInFlight: ctx.window || 1000, connection, topology })
    await publisher.start()
    const json = ctx.json === true
    const options = { persistent: ctx.persistent, mandatory: flags.mandatory }
    const run = async () => {
      const l = loop(ctx)
      if (sync) {
        while (l.more()) {
          const paced = l.pace()
          if (paced) await paced
          const t0 = performance.now()
          counts.sent++
          if (json) await publisher.sendJsonToQueue(ctx.queue, l.value(), options)
          else await publisher.sendMessageToQueue(ctx.queue, l.body(), options)
          counts.confirmed++
          marks.latency(t0)
        }
        return
      }
      // The window is lapinmq's own (maxInFlight, waitForRoom); this only waits for the last confirms.
      const tally = new SendTally(counts, marks)
      while (l.more()) {
        const paced = l.pace()
        if (paced) await paced
        await publisher.waitForRoom()
        // sendJsonToQueue serializes the object and sets contentType application/json.
        tally.track(
          json
            ? publisher.sendJsonToQueue(ctx.queue, l.value(), options)
            : publisher.sendMessageToQueue(ctx.queue, l.body(), options),
        )
      }
      await tally.allSettled()
    }
    return {
      run,
      async close() {
        await publisher.stop()
        await connection.close()
      },
    }
  },
  /** amqplib: a confirm channel with callbacks and 'drain' (a plain channel without confirms). */
  async amqplib(ctx) {
    const { marks, counts } = ctx
    const model = await amqplibConnect(ctx.url)
    const confirm = ctx.window > 0
    const ch = confirm ? await model.createConfirmChannel() : await model.createChannel()
    // amqplib takes Buffers only: the JSON variant serializes each object, as its docs show, and
    // names the contentType.
    const json = ctx.json === true
    const options = json
      ? { persistent: ctx.persistent, mandatory: flags.mandatory, contentType: 'application/json' }
      : { persistent: ctx.persistent, mandatory: flags.mandatory }
    const run = async () => {
      const window = new Window(ctx.window || 1)
      const l = loop(ctx)
      while (l.more()) {
        const paced = l.pace()
        if (paced) await paced
        counts.sent++
        let writable: boolean
        if (confirm) {
          const full = window.acquire()
          if (full) await full
          const t0 = performance.now()
          const body = json ? Buffer.from(JSON.stringify(l.value())) : l.body()
          writable = ch.sendToQueue(ctx.queue, body, options, (err) => {
            if (err) counts.nacked++
            else {
              counts.confirmed++
              marks.latency(t0)
            }
            window.release()
          })
        } else {
          const body = json ? Buffer.from(JSON.stringify(l.value())) : l.body()
          writable = ch.sendToQueue(ctx.queue, body, options)
        }
        if (!writable) await once(ch, 'drain')
      }
      await window.idle()
    }
    return {
      run,
      async close() {
        await ch.close()
        await model.close()
      },
    }
  },
  ...Object.fromEntries(
    Object.entries(promiseSenders).map(([peer, open]) => [
      peer,
      async (ctx: RunContext): Promise<Publishing> => {
        const sender = await open(ctx, ctx.window > 0)
        return { run: () => windowed(ctx, sender.send), close: sender.close }
      },
    ]),
  ),
}

/** S0's minimal client: pre-encoded frames written in batches of up to 256 messages. */
export async function rawPublisher(ctx: RunContext): Promise<Publishing> {
  const { marks, counts } = ctx
  const client = await RawClient.connect(ctx.url)
  if (ctx.window > 0) await client.confirmSelect()
  client.onConfirm = (ms) => marks.latency(performance.now() - ms)
  // The JSON variant: one object serialized once, and its frames pre-encoded like the Buffer body's
  // (the broker's ceiling for the same bytes on the wire, contentType included).
  const one = ctx.json
    ? client.encodePublish(ctx.queue, Buffer.from(JSON.stringify(jsonValue(1))), {
        persistent: ctx.persistent,
        mandatory: flags.mandatory,
        contentType: 'application/json',
      })
    : client.encodePublish(ctx.queue, ctx.body, { persistent: ctx.persistent, mandatory: flags.mandatory })
  const batchSize = Math.min(ctx.window || 256, 256)
  const batch = Buffer.concat(Array.from({ length: batchSize }, () => one))
  const run = async () => {
    const l = loop(ctx)
    while (l.more()) {
      let n = batchSize
      if (ctx.window > 0) {
        await client.waitForConfirms(ctx.window - 1)
        n = Math.min(batchSize, ctx.window - client.unconfirmed)
      }
      const drained = client.write(batch, one.length, n)
      if (drained) await drained
    }
    if (ctx.window > 0) await client.waitForConfirms(0)
    counts.sent = client.counts.published
    counts.confirmed = client.counts.acked
    counts.nacked = client.counts.nacked
    counts.returned = client.counts.returned
  }
  return { run, close: () => client.close() }
}

/** A publish-only run: open, publish between the marks, close. */
export function publishOnly(open: (ctx: RunContext) => Promise<Publishing>) {
  return async (ctx: RunContext): Promise<void> => {
    const p = await open(ctx)
    ctx.marks.start()
    await p.run()
    ctx.marks.stop()
    await p.close()
  }
}

/** Every peer's publisher plus the raw client, each as a publish-only run (S1, S2, S3). */
export function publishPeers(): Record<string, PeerRun> {
  return {
    ...Object.fromEntries(Object.entries(publishers).map(([name, open]) => [name, publishOnly(open)])),
    [ceilingPeer]: publishOnly(rawPublisher),
  }
}

/** Counts promise-returning sends (sent, confirmed with latency, nacked) and waits for the last ones. */
class SendTally {
  readonly #counts: RunContext['counts']
  readonly #marks: RunContext['marks']
  #outstanding = 0
  #ending = false
  readonly #settled = deferred()

  constructor(counts: RunContext['counts'], marks: RunContext['marks']) {
    this.#counts = counts
    this.#marks = marks
  }

  /** A send just made: counted now, and again when it settles. */
  track(sent: Promise<unknown>): void {
    this.#counts.sent++
    this.#outstanding++
    const t0 = performance.now()
    sent.then(
      () => {
        this.#counts.confirmed++
        this.#marks.latency(t0)
        this.#done()
      },
      () => {
        this.#counts.nacked++
        this.#done()
      },
    )
  }

  /** Resolves once every tracked send has settled (call after the last track). */
  async allSettled(): Promise<void> {
    this.#ending = true
    if (this.#outstanding > 0) await this.#settled.promise
  }

  #done(): void {
    if (--this.#outstanding === 0 && this.#ending) this.#settled.resolve()
  }
}

/**
 * The pooled variant of S3: `pooledWorkers` async publishers on a pool of `size` connections, each
 * placed by the pool on its least-loaded connection, the window split between them (the same
 * messages in flight in all), publishing until the same deadline.
 */
export function pooledPublisher(size: number) {
  return async (ctx: RunContext): Promise<Publishing> => {
    const { marks, counts } = ctx
    const pool = new ConnectionPool({ size, url: ctx.url, name: 'bench-lapinmq-pool' })
    const topology = {
      queues: [{ name: ctx.queue, ...(ctx.queueArgs ? { arguments: ctx.queueArgs } : {}) }],
    }
    const maxInFlight = Math.max(1, Math.floor((ctx.window || 1000) / pooledWorkers))
    const publishers = Array.from(
      { length: pooledWorkers },
      () => new Publisher({ kind: 'async', maxInFlight, connection: pool, topology }),
    )
    await Promise.all(publishers.map((p) => p.start()))
    const options = { persistent: ctx.persistent, mandatory: flags.mandatory }
    const run = async () => {
      const tally = new SendTally(counts, marks)
      const l = loop(ctx)
      const publishUntilDeadline = async (publisher: Publisher) => {
        while (l.more()) {
          await publisher.waitForRoom()
          tally.track(publisher.sendMessageToQueue(ctx.queue, l.body(), options))
        }
      }
      await Promise.all(publishers.map(publishUntilDeadline))
      await tally.allSettled()
    }
    return {
      run,
      async close() {
        await Promise.all(publishers.map((p) => p.stop()))
        await pool.close()
      },
    }
  }
}
