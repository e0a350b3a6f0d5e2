// `lapinmq declare`, `delete` and `purge`: the broker's topology from the shell, through the same
// Connection verbs a program uses (connection.declare checks every field before anything is sent).
import type { Command } from 'commander'
import type { ExchangeType, QueueOverflow, QueueType, Topology } from '../index.js'
import {
  type CommonOptions,
  intFlag,
  openConnection,
  queueArgFlag,
  quote,
  withCommonOptions,
} from './common.js'
import { ExitCode, UsageError } from './exit-codes.js'

interface ArgsOption extends CommonOptions {
  arg: Record<string, unknown>
}

interface ExchangeFlags extends ArgsOption {
  type: ExchangeType
  transient?: boolean
  autoDelete?: boolean
  internal?: boolean
  alternateExchange?: string
}

interface QueueFlags extends ArgsOption {
  type?: QueueType
  transient?: boolean
  autoDelete?: boolean
  deadLetterExchange?: string
  deadLetterRoutingKey?: string
  messageTtl?: number
  maxLength?: number
  overflow?: QueueOverflow
}

interface BindingFlags extends ArgsOption {
  exchange: string
  queue?: string
  toExchange?: string
  routingKey: string
}

const argOption = [
  '--arg <key=value>',
  'an argument (repeatable; numbers and true/false keep their type)',
] as const

export function topologyCommands(program: Command): void {
  const declare = program
    .command('declare')
    .summary('declare an exchange, a queue or a binding')
    .description(
      'Declares an exchange, a queue or a binding, durable unless --transient. Declaring what exists with the same arguments changes nothing; with other arguments the broker refuses (exit 9) and says which argument differs.',
    )
    .addHelpText(
      'after',
      `
Examples:
  lapinmq declare exchange events --type topic
  lapinmq declare queue billing --type quorum --dead-letter-exchange '' --dead-letter-routing-key billing.dead
  lapinmq declare binding --exchange events --queue billing --routing-key 'invoice.*'`,
    )
  withCommonOptions(
    declare
      .command('exchange')
      .summary('declare an exchange')
      .argument('<name>', 'the exchange')
      .option('-t, --type <type>', 'direct, fanout, topic or headers', 'direct')
      .option('--transient', 'not durable: gone when the broker restarts')
      .option('--auto-delete', 'deleted once its last binding is removed')
      .option('--internal', 'publishers cannot publish to it directly, only other exchanges')
      .option('--alternate-exchange <exchange>', 'where messages that match no binding go')
      .option(...argOption, queueArgFlag, {}),
  ).action(async (name: string, o: ExchangeFlags) => {
    const exchange = {
      name,
      type: o.type,
      ...(o.transient ? { durable: false } : {}),
      ...(o.autoDelete ? { autoDelete: true } : {}),
      ...(o.internal ? { internal: true } : {}),
      ...(o.alternateExchange !== undefined ? { alternateExchange: o.alternateExchange } : {}),
      ...withArgs(o),
    }
    process.exitCode = await declareTopology(
      { exchanges: [exchange] },
      `exchange ${quote(name)} (${o.type})`,
      o,
    )
  })
  withCommonOptions(
    declare
      .command('queue')
      .summary('declare a queue')
      .argument('<name>', 'the queue')
      .option('-t, --type <type>', 'classic, quorum or stream (default: the broker’s, classic)')
      .option('--transient', 'not durable: gone when the broker restarts (classic queues only)')
      .option('--auto-delete', 'deleted once its last consumer leaves')
      .option(
        '--dead-letter-exchange <exchange>',
        "where rejected and expired messages go ('' for the default exchange)",
      )
      .option('--dead-letter-routing-key <key>', 'the routing key they go with')
      .option('--message-ttl <ms>', 'how long a message may wait in the queue', intFlag(0, 2 ** 32 - 1))
      .option('--max-length <n>', 'most ready messages', intFlag(0))
      .option('--overflow <behaviour>', 'at max length: drop-head, reject-publish or reject-publish-dlx')
      .option(...argOption, queueArgFlag, {}),
  ).action(async (name: string, o: QueueFlags) => {
    const queue = {
      name,
      ...(o.type !== undefined ? { type: o.type } : {}),
      ...(o.transient ? { durable: false } : {}),
      ...(o.autoDelete ? { autoDelete: true } : {}),
      ...(o.deadLetterExchange !== undefined ? { deadLetterExchange: o.deadLetterExchange } : {}),
      ...(o.deadLetterRoutingKey !== undefined ? { deadLetterRoutingKey: o.deadLetterRoutingKey } : {}),
      ...(o.messageTtl !== undefined ? { messageTtl: o.messageTtl } : {}),
      ...(o.maxLength !== undefined ? { maxLength: o.maxLength } : {}),
      ...(o.overflow !== undefined ? { overflow: o.overflow } : {}),
      ...withArgs(o),
    }
    const what = `queue ${quote(name)}${o.type === undefined ? '' : ` (${o.type})`}`
    process.exitCode = await declareTopology({ queues: [queue] }, what, o)
  })
  withCommonOptions(
    declare
      .command('binding')
      .summary('bind a queue, or an exchange, to an exchange')
      .requiredOption('-e, --exchange <exchange>', 'the exchange messages come from')
      .option('--queue <queue>', 'the queue they go to')
      .option('--to-exchange <exchange>', 'or the exchange they go to')
      .option('-k, --routing-key <key>', 'the binding key (a pattern for topic exchanges)', '')
      .option(...argOption, queueArgFlag, {}),
  ).action(async (o: BindingFlags) => {
    if ((o.queue === undefined) === (o.toExchange === undefined)) {
      throw new UsageError('give --queue or --to-exchange (one of them)')
    }
    const to = o.queue !== undefined ? { queue: o.queue } : { toExchange: o.toExchange as string }
    const binding = { exchange: o.exchange, ...to, routingKey: o.routingKey, ...withArgs(o) }
    const target = o.queue !== undefined ? `queue ${quote(o.queue)}` : `exchange ${quote(o.toExchange ?? '')}`
    const what = `binding of ${target} to exchange ${quote(o.exchange)} with key ${quote(o.routingKey)}`
    process.exitCode = await declareTopology({ bindings: [binding] }, what, o)
  })

  const remove = program
    .command('delete')
    .summary('delete a queue (and its messages) or an exchange')
    .description(
      'Deletes a queue with its messages, or an exchange with its bindings. Deleting what does not exist succeeds.',
    )
    .addHelpText(
      'after',
      '\nExamples:\n  lapinmq delete queue billing.test\n  lapinmq delete exchange events.old',
    )
  for (const kind of ['queue', 'exchange'] as const) {
    withCommonOptions(
      remove
        .command(kind)
        .summary(`delete ${kind === 'queue' ? 'a queue and its messages' : 'an exchange and its bindings'}`)
        .argument('<name>', `the ${kind}`),
    ).action(async (name: string, o: CommonOptions) => {
      process.exitCode = await withConnection(o, 'delete', async (connection) => {
        if (kind === 'queue') await connection.deleteQueue(name)
        else await connection.deleteExchange(name)
        return `deleted ${kind} ${quote(name)}`
      })
    })
  }

  withCommonOptions(
    program
      .command('purge')
      .summary('remove the ready messages of a queue')
      .description(
        'Removes every ready message of a queue and prints how many; messages delivered and not yet acked stay with their consumers. A missing queue exits 6.',
      )
      .argument('<queue>', 'the queue')
      .addHelpText('after', '\nExample:\n  lapinmq purge orders.test'),
  ).action(async (queue: string, o: CommonOptions) => {
    process.exitCode = await withConnection(o, 'purge', async (connection) => {
      const removed = await connection.purgeQueue(queue)
      return `purged ${removed} message${removed === 1 ? '' : 's'} from queue ${quote(queue)}`
    })
  })
}

function withArgs(o: ArgsOption): { arguments?: Record<string, unknown> } {
  return Object.keys(o.arg).length > 0 ? { arguments: o.arg } : {}
}

function declareTopology(topology: Topology, what: string, o: CommonOptions): Promise<number> {
  return withConnection(o, 'declare', async (connection) => {
    await connection.declare(topology)
    return `declared ${what}`
  })
}

/** Runs `work` on a connection of the command's own, prints what it reports, and closes. */
async function withConnection(
  o: CommonOptions,
  role: string,
  work: (connection: ReturnType<typeof openConnection>) => Promise<string>,
): Promise<number> {
  const connection = openConnection(o, role)
  try {
    const done = await work(connection)
    if (!o.quiet) process.stderr.write(`${done}\n`)
    return ExitCode.OK
  } finally {
    await connection.close()
  }
}
