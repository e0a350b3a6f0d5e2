// Test-side access to the shared broker: admin operations done with amqplib directly (outside the
// library under test), unique names, and rabbitmqctl. Every test cleans up what it declares.
import { execFile } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { promisify } from 'node:util'
import * as amqplib from 'amqplib'

export const brokerUrl = process.env.RABBITMQ_URL ?? 'amqp://guest:guest@localhost:5672/'

let admin: Promise<amqplib.ChannelModel> | undefined

/** A private admin connection (not lapinmq's). */
function adminConnection(): Promise<amqplib.ChannelModel> {
  admin ??= amqplib.connect(brokerUrl).then((conn) => {
    conn.on('error', () => {})
    return conn
  })
  return admin
}

/** Closes the admin connection; call from a file's last `after()`. */
export async function closeAdmin(): Promise<void> {
  const a = admin
  admin = undefined
  if (a) await (await a).close().catch(() => undefined)
}

/** A queue/exchange name no other test or run uses. */
export function uniqueName(prefix: string): string {
  return `lapinmq-test.${prefix}.${randomUUID().slice(0, 8)}`
}

async function withChannel<T>(fn: (ch: amqplib.Channel) => Promise<T>): Promise<T> {
  const ch = await (await adminConnection()).createChannel()
  ch.on('error', () => {})
  try {
    return await fn(ch)
  } finally {
    await ch.close().catch(() => undefined)
  }
}

export function declareQueue(
  name: string,
  options: amqplib.Options.AssertQueue = { durable: true },
): Promise<unknown> {
  return withChannel((ch) => ch.assertQueue(name, options))
}

/**
 * A queue whose messages rejected without requeue go to a dead-letter queue: declares both and
 * returns their names and the queue's arguments (a Consumer of the queue must declare it with the
 * same `queueArgs`). A settle that should ack leaves no trace in the queue either way; the
 * dead-letter queue tells an ack from a reject.
 */
export async function declareQueueWithDeadLetters(
  prefix: string,
): Promise<{ queue: string; dlq: string; queueArgs: Record<string, unknown> }> {
  const queue = uniqueName(prefix)
  const dlq = `${queue}.dlq`
  await declareQueue(dlq)
  const queueArgs = { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': dlq }
  await declareQueue(queue, { durable: true, arguments: queueArgs })
  return { queue, dlq, queueArgs }
}

export function declareExchange(name: string, type: string, internal = false): Promise<unknown> {
  return withChannel((ch) => ch.assertExchange(name, type, { durable: false, autoDelete: false, internal }))
}

export function bindQueue(queue: string, exchange: string, routingKey: string): Promise<unknown> {
  return withChannel((ch) => ch.bindQueue(queue, exchange, routingKey))
}

export function deleteQueue(name: string): Promise<unknown> {
  return withChannel((ch) => ch.deleteQueue(name)).catch(() => undefined)
}

export function deleteExchange(name: string): Promise<unknown> {
  return withChannel((ch) => ch.deleteExchange(name)).catch(() => undefined)
}

/** Ready messages in a queue (unacked ones are not counted). */
export function queueCount(name: string): Promise<number> {
  return withChannel(async (ch) => (await ch.checkQueue(name)).messageCount)
}

/** Consumers subscribed to a queue now. */
export function consumerCount(name: string): Promise<number> {
  return withChannel(async (ch) => (await ch.checkQueue(name)).consumerCount)
}

/** Takes every ready message out of a queue (acking them) and returns them in order. */
export function drainQueue(name: string): Promise<amqplib.GetMessage[]> {
  return withChannel(async (ch) => {
    const out: amqplib.GetMessage[] = []
    for (;;) {
      const m = await ch.get(name, { noAck: true })
      if (m === false) return out
      out.push(m)
    }
  })
}

/** Publishes raw messages (no lapinmq) and waits for their confirms. */
export async function publishRaw(queue: string, bodies: readonly string[]): Promise<void> {
  const ch = await (await adminConnection()).createConfirmChannel()
  for (const body of bodies) ch.sendToQueue(queue, Buffer.from(body), { persistent: true })
  await ch.waitForConfirms()
  await ch.close()
}

const execFileP = promisify(execFile)

/** Runs rabbitmqctl against the shared broker (tests run as root, as CI does). */
export async function rabbitmqctl(...args: string[]): Promise<string> {
  const { stdout } = await execFileP('rabbitmqctl', ['-q', ...args], { timeout: 60_000 })
  return stdout
}

/** The broker's connections, with their client-provided names and channel counts. */
export async function listConnections(): Promise<{ name: string; channels: number }[]> {
  const out = await rabbitmqctl('list_connections', 'client_properties', 'channels', '--formatter', 'json')
  const rows = JSON.parse(out) as { client_properties: unknown; channels: number }[]
  return rows.map((r) => ({ name: connectionName(r.client_properties), channels: r.channels }))
}

function connectionName(props: unknown): string {
  // rabbitmqctl's JSON renders the AMQP table as [[key, type, value], ...] or as an object.
  if (Array.isArray(props)) {
    const entry = props.find((p) => Array.isArray(p) && p[0] === 'connection_name') as unknown[] | undefined
    return typeof entry?.[2] === 'string' ? entry[2] : ''
  }
  const name = (props as Record<string, unknown> | null)?.connection_name
  return typeof name === 'string' ? name : ''
}

/** Polls `check` until it is true or `timeoutMs` passes. */
export async function waitFor(
  check: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
  what = 'condition',
): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

/** Declares a quorum queue with arguments of its own, as an operator would: amqplib, its own connection. */
export async function operatorDeclaresQuorum(queue: string): Promise<void> {
  const connection = await amqplib.connect(brokerUrl)
  try {
    const channel = await connection.createChannel()
    await channel.assertQueue(queue, {
      durable: true,
      arguments: { 'x-queue-type': 'quorum', 'x-delivery-limit': 5, 'x-max-length': 1_000 },
    })
  } finally {
    await connection.close()
  }
}
