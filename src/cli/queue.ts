// `lapinmq queue [name]`: how many messages a queue holds and how many consumers read it. One queue
// is asked over AMQP (a passive declare: ready messages and consumers, nothing else). AMQP cannot
// list queues: every queue of a vhost comes from the management plugin's HTTP API, when a
// --management-url is given.
import type { Command } from 'commander'
import { LapinError } from '../index.js'
import { missingQueueHint, openConnection, quote, withCommonOptions } from './common.js'
import { ExitCode, UsageError, withHint } from './exit-codes.js'
import { printable } from './message-output.js'

interface QueueOptions {
  url?: string
  quiet?: boolean
  json?: boolean
  managementUrl?: string
  vhost: string
}

/** One queue as the management API describes it (the fields lapinmq prints). */
interface ManagedQueue {
  name: string
  type?: string
  messages_ready?: number
  messages_unacknowledged?: number
  consumers?: number
}

export function queueCommand(program: Command): void {
  withCommonOptions(
    program
      .command('queue')
      .summary('how many messages a queue holds, and its consumers')
      .description(
        "Prints a queue's ready messages and consumers, asked over AMQP with a passive declare (nothing is created; a missing queue exits 6). Without a name, lists every queue of the vhost with its type, ready and unacked messages and consumers: AMQP cannot list queues, so that needs the management plugin's HTTP API (--management-url).",
      )
      .argument('[name]', 'the queue (omit to list every queue, with --management-url)')
      .option('--json', 'print JSON instead of text')
      .option(
        '--management-url <url>',
        'the management plugin HTTP API, http://user:password@host:15672 (to list every queue)',
      )
      .option('--vhost <vhost>', 'the vhost to list, with --management-url', '/'),
  )
    .addHelpText(
      'after',
      `
Examples:
  lapinmq queue orders
  lapinmq queue --management-url http://guest:guest@localhost:15672 --json`,
    )
    .action(async (name: string | undefined, options: QueueOptions) => {
      process.exitCode = name === undefined ? await listQueues(options) : await showQueue(name, options)
    })
}

async function showQueue(name: string, o: QueueOptions): Promise<number> {
  const connection = openConnection(o, 'queue')
  try {
    const info = await connection.checkQueue(name).catch((err: unknown) => {
      throw (err as { code?: string }).code === 'NOT_FOUND'
        ? withHint(err, missingQueueHint(name, false))
        : err
    })
    const consumers = `${info.consumerCount} consumer${info.consumerCount === 1 ? '' : 's'}`
    process.stdout.write(
      o.json
        ? `${JSON.stringify({ name: info.queue, ready: info.messageCount, consumers: info.consumerCount })}\n`
        : `queue ${quote(info.queue)}: ${info.messageCount} ready, ${consumers}\n`,
    )
    return ExitCode.OK
  } finally {
    await connection.close()
  }
}

async function listQueues(o: QueueOptions): Promise<number> {
  if (o.managementUrl === undefined) {
    throw new UsageError(
      'AMQP cannot list queues: name one (lapinmq queue <name>), or give --management-url http://user:password@host:15672 to list them through the management plugin (rabbitmq-plugins enable rabbitmq_management)',
    )
  }
  const queues = await fetchQueues(o.managementUrl, o.vhost)
  if (o.json) {
    process.stdout.write(`${JSON.stringify(queues.map(summary))}\n`)
    return ExitCode.OK
  }
  const rows = [['name', 'type', 'ready', 'unacked', 'consumers']].concat(
    queues.map((q) => {
      const s = summary(q)
      return [printable(s.name), s.type, String(s.ready), String(s.unacked), String(s.consumers)]
    }),
  )
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? []
  for (const row of rows) {
    process.stdout.write(
      `${row
        .map((cell, i) => cell.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd()}\n`,
    )
  }
  return ExitCode.OK
}

function summary(q: ManagedQueue): {
  name: string
  type: string
  ready: number
  unacked: number
  consumers: number
} {
  return {
    name: q.name,
    type: q.type ?? 'classic',
    ready: q.messages_ready ?? 0,
    unacked: q.messages_unacknowledged ?? 0,
    consumers: q.consumers ?? 0,
  }
}

/** GET /api/queues/<vhost>, with the credentials of the URL as basic auth (never printed). */
async function fetchQueues(managementUrl: string, vhost: string): Promise<ManagedQueue[]> {
  let url: URL
  try {
    url = new URL(managementUrl)
  } catch {
    throw new UsageError('--management-url must be a URL, e.g. http://guest:guest@localhost:15672')
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UsageError('--management-url must be an http:// or https:// URL')
  }
  let user: string
  let password: string
  try {
    user = decodeURIComponent(url.username || 'guest')
    password = decodeURIComponent(url.password || 'guest')
  } catch {
    throw new UsageError('--management-url has a user or password with a bad %-escape')
  }
  url.username = ''
  url.password = ''
  const endpoint = new URL(
    `api/queues/${encodeURIComponent(vhost)}?columns=name,type,messages_ready,messages_unacknowledged,consumers`,
    url.href.endsWith('/') ? url : `${url.href}/`,
  )
  let response: Response
  try {
    response = await fetch(endpoint, {
      headers: { authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` },
      signal: AbortSignal.timeout(10_000),
    })
  } catch (err) {
    throw new LapinError('CONNECTION_FAILED', `the management API at ${endpoint.origin} did not answer`, {
      cause: err,
    })
  }
  if (response.status === 401)
    throw new LapinError('ACCESS_REFUSED', `the management API at ${endpoint.origin} refused the login (401)`)
  if (response.status === 404)
    throw new LapinError(
      'NOT_FOUND',
      `the management API at ${endpoint.origin} knows no vhost ${quote(vhost)} (404)`,
    )
  if (!response.ok) throw new Error(`the management API at ${endpoint.origin} answered ${response.status}`)
  let body: unknown
  try {
    body = await response.json()
  } catch (err) {
    // A body that stalls past the deadline, or is not JSON: no usable answer.
    throw new LapinError(
      'CONNECTION_FAILED',
      `the management API at ${endpoint.origin} did not answer with JSON`,
      {
        cause: err,
      },
    )
  }
  if (!Array.isArray(body))
    throw new Error(
      `the management API at ${endpoint.origin} answered something that is not a list of queues`,
    )
  return (body as ManagedQueue[]).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
}
