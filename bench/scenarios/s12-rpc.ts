// S12: RPC over direct reply-to (`amq.rabbitmq.reply-to`). Each peer's RPC client makes calls to
// a fresh queue, `window` of them in flight (1 or 50), for `durationMs`; each call's body is a
// fresh 100-byte transient request carrying its sequence number, and its reply must echo it.
// The server that answers is the same for every peer (the plain amqplib echo server below, run by
// the runner in a process of its own, lib/rpc-server.ts), so that the clients are what is compared;
// in the `own server` variant each client calls a server written with its own library instead.
// The rate is replies matched per second; "confirm latency" holds call → reply.
import type amqplib from 'amqplib'
import type { Connection as RabbitConnection, RPCClient } from 'rabbitmq-client'
import type { PeerRun, RpcServerKind, RunContext, Scenario } from '../lib/common.ts'
import { Consumer, type Message, MessageStatus, RpcClient } from '../lib/lapinmq.ts'
import { amqplibConnect, lapinConnection, rabbitConnect } from '../lib/peers.ts'

/** Every client's call timeout, ms. */
const timeoutMs = 5000
const replyTo = 'amq.rabbitmq.reply-to'

/** A peer's RPC client, opened on one queue: call() resolves with the reply's body. */
interface Caller {
  call(body: Buffer): Promise<Buffer>
  close(): Promise<void>
}

/**
 * The calls of one run: `window` loops, each making one call after another until the deadline.
 * A class: its per-call method is not an arrow function per call.
 */
class Calls {
  readonly #ctx: RunContext
  readonly #caller: Caller
  #seq = 0
  #deadline = 0

  constructor(ctx: RunContext, caller: Caller) {
    this.#ctx = ctx
    this.#caller = caller
  }

  async run(): Promise<void> {
    const { marks, window, durationMs } = this.#ctx
    marks.start()
    this.#deadline = performance.now() + durationMs
    const loops: Promise<void>[] = []
    for (let i = 0; i < window; i++) loops.push(this.#loop())
    await Promise.all(loops)
    marks.stop()
  }

  async #loop(): Promise<void> {
    const { counts, marks, body: template } = this.#ctx
    while (performance.now() < this.#deadline) {
      const body = Buffer.allocUnsafe(template.length)
      template.copy(body)
      body.writeUInt32BE(this.#seq++, 0)
      counts.sent++
      const t0 = performance.now()
      try {
        const reply = await this.#caller.call(body)
        marks.latency(t0)
        if (reply.equals(body)) counts.received++
        else counts.mismatched++
      } catch {
        counts.callErrors++
      }
    }
  }
}

/** lapinmq's RpcClient on its own Connection. */
async function lapinmqCaller(ctx: RunContext): Promise<Caller> {
  const connection = lapinConnection(ctx.url)
  const rpc = new RpcClient({ timeout: timeoutMs, connection })
  await rpc.start()
  const queue = ctx.queue
  return {
    async call(body) {
      return (await rpc.call(queue, body)).body
    },
    async close() {
      await rpc.stop()
      await connection.close()
    },
  }
}

/** rabbitmq-client's RPCClient, as its README shows it (`confirm: true`). */
async function rabbitCaller(ctx: RunContext): Promise<Caller> {
  const rabbit = await rabbitConnect(ctx.url)
  const rpc: RPCClient = rabbit.createRPCClient({ confirm: true, timeout: timeoutMs })
  const queue = ctx.queue
  return {
    async call(body) {
      // No contentType on the reply: its body comes back as a Buffer.
      return (await rpc.send(queue, body)).body as Buffer
    },
    async close() {
      await rpc.close()
      await rabbit.close()
    },
  }
}

interface Pending {
  resolve: (body: Buffer) => void
  reject: (err: Error) => void
  timer: NodeJS.Timeout
}

/**
 * The minimal correct direct reply-to client a user writes on amqplib: one channel consuming
 * `amq.rabbitmq.reply-to` (noAck), requests published with `replyTo` and a `correlationId`, a Map
 * of the pending calls, a timer per call, and every pending call rejected if the channel closes.
 */
class AmqplibRpc implements Caller {
  readonly #model: amqplib.ChannelModel
  readonly #channel: amqplib.Channel
  readonly #queue: string
  readonly #pending = new Map<string, Pending>()
  #id = 0

  static async open(ctx: RunContext): Promise<AmqplibRpc> {
    const model = await amqplibConnect(ctx.url)
    const channel = await model.createChannel()
    const rpc = new AmqplibRpc(model, channel, ctx.queue)
    await channel.consume(replyTo, (msg) => rpc.#reply(msg), { noAck: true })
    return rpc
  }

  constructor(model: amqplib.ChannelModel, channel: amqplib.Channel, queue: string) {
    this.#model = model
    this.#channel = channel
    this.#queue = queue
    channel.on('close', () => this.#rejectAll(new Error('RPC channel closed')))
    channel.on('error', () => {})
  }

  call(body: Buffer): Promise<Buffer> {
    const correlationId = String(++this.#id)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.#timeout(correlationId), timeoutMs)
      this.#pending.set(correlationId, { resolve, reject, timer })
      this.#channel.sendToQueue(this.#queue, body, { replyTo, correlationId, persistent: false })
    })
  }

  async close(): Promise<void> {
    await this.#channel.close()
    await this.#model.close()
  }

  #reply(msg: amqplib.ConsumeMessage | null): void {
    if (!msg) return
    const id: unknown = msg.properties.correlationId
    if (typeof id !== 'string') return
    const pending = this.#pending.get(id)
    if (!pending) return
    this.#pending.delete(id)
    clearTimeout(pending.timer)
    pending.resolve(msg.content)
  }

  #timeout(id: string): void {
    const pending = this.#pending.get(id)
    if (!pending) return
    this.#pending.delete(id)
    pending.reject(new Error('RPC call timed out'))
  }

  #rejectAll(err: Error): void {
    for (const pending of this.#pending.values()) {
      clearTimeout(pending.timer)
      pending.reject(err)
    }
    this.#pending.clear()
  }
}

function peer(open: (ctx: RunContext) => Promise<Caller>): PeerRun {
  return async (ctx: RunContext) => {
    const caller = await open(ctx)
    try {
      await new Calls(ctx, caller).run()
    } finally {
      await caller.close()
    }
  }
}

/** A running RPC server: close() stops it and tells how many requests it answered. */
export interface RpcServer {
  close(): Promise<number>
}

/** What the runner's RPC server process (lib/rpc-server-child.ts) starts for a run. */
export interface RpcServerOptions {
  url: string
  queue: string
  prefetch: number
  /** Requests handled at once by the servers that have such a setting (lapinmq, rabbitmq-client). */
  concurrency: number
}

/**
 * The echo server every client calls (all variants but `own server`): plain amqplib, prefetch
 * `prefetch`, each request's body published back to its `replyTo` with its `correlationId`, then
 * the request acked.
 */
async function echoServer({ url, queue, prefetch }: RpcServerOptions): Promise<RpcServer> {
  const model = await amqplibConnect(url)
  const channel = await model.createChannel()
  await channel.prefetch(prefetch)
  let served = 0
  const { consumerTag } = await channel.consume(queue, (msg) => {
    if (!msg) return
    const { replyTo: to, correlationId } = msg.properties
    channel.sendToQueue(to as string, msg.content, { correlationId, persistent: false })
    channel.ack(msg)
    served++
  })
  return {
    async close() {
      await channel.cancel(consumerTag)
      await channel.close()
      await model.close()
      return served
    },
  }
}

/** `own server`, lapinmq: a Consumer whose task replies with the request's body. */
async function lapinmqServer({ url, queue, prefetch, concurrency }: RpcServerOptions): Promise<RpcServer> {
  const connection = lapinConnection(url)
  let served = 0
  const consumer = new Consumer({
    queueName: queue,
    concurrency,
    prefetch,
    connection,
    taskFunction: async (message: Message) => {
      await message.reply(message.body)
      served++
      return MessageStatus.SUCCESS
    },
  })
  await consumer.start()
  return {
    async close() {
      await consumer.stop()
      await connection.close()
      return served
    },
  }
}

/** `own server`, rabbitmq-client: createConsumer, its handler replying with `reply`, as its README shows. */
async function rabbitServer({ url, queue, prefetch, concurrency }: RpcServerOptions): Promise<RpcServer> {
  const rabbit: RabbitConnection = await rabbitConnect(url)
  let served = 0
  const consumer = rabbit.createConsumer(
    { queue, queueOptions: { durable: true }, concurrency, qos: { prefetchCount: prefetch } },
    async (req, reply) => {
      await reply(req.body)
      served++
    },
  )
  await new Promise<void>((resolve, reject) => {
    consumer.once('ready', resolve)
    consumer.once('error', reject)
  })
  return {
    async close() {
      await consumer.close()
      await rabbit.close()
      return served
    },
  }
}

export const rpcServers: Record<RpcServerKind, (options: RpcServerOptions) => Promise<RpcServer>> = {
  echo: echoServer,
  lapinmq: lapinmqServer,
  'rabbitmq-client': rabbitServer,
}

const clients: Record<string, (ctx: RunContext) => Promise<Caller>> = {
  lapinmq: lapinmqCaller,
  amqplib: (ctx) => AmqplibRpc.open(ctx),
  'rabbitmq-client': rabbitCaller,
}

export const s12: Scenario = {
  id: 'S12',
  title: 'RPC over direct reply-to (calls/s; call → reply latency)',
  headline: 'received',
  prefill: () => 0,
  // The amqplib client's own server is the echo server.
  server: (variant, peerName) =>
    variant.ownServer && (peerName === 'lapinmq' || peerName === 'rabbitmq-client') ? peerName : 'echo',
  verify: ({ counts, left, served }) =>
    counts.sent > 0 &&
    counts.received === counts.sent &&
    counts.callErrors === 0 &&
    counts.mismatched === 0 &&
    served === counts.sent &&
    left === 0,
  peers: Object.fromEntries(Object.entries(clients).map(([name, open]) => [name, peer(open)])),
}
