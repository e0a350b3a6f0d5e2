// `lapinmq call <queue> [body]` and `lapinmq call --exchange X --routing-key K [body]`: sends one
// request over direct reply-to and prints its reply: the body as received, or with --json one
// object with its properties and headers. The exit code says how the call ended: a reply (0), no
// reply before --timeout, no queue for the request, a lost connection, or Ctrl-C.
import { type Command, Option } from 'commander'
import { type CallOptions, LapinError, RpcClient } from '../index.js'
import { type CommonOptions, handleInterrupts, openConnection, quote, withCommonOptions } from './common.js'
import { durationFlag, formatDuration } from './durations.js'
import { ExitCode, withHint } from './exit-codes.js'
import { readInput } from './input.js'
import {
  type PropertyOptions,
  propertyOptions,
  type Target,
  type TargetOptions,
  targetOf,
  withPropertyOptions,
  withTargetOptions,
} from './message-flags.js'
import { jsonLine, plainBody } from './message-output.js'
import { seconds } from './status-line.js'

interface CallCliOptions extends CommonOptions, TargetOptions, PropertyOptions {
  file?: string
  timeout: number
  json?: boolean
  persistent?: boolean
}

export function callCommand(program: Command): void {
  const command = withTargetOptions(
    program
      .command('call')
      .summary('send a request and print its reply (RPC)')
      .description(
        "Sends the body (the argument, --file, or stdin) as a request to a queue, or to an exchange with a routing key, over direct reply-to, and waits for the server's reply: its body is printed on stdout as received, or with --json one JSON object with its properties and headers. The exit code says how the call ended: 0 for a reply, 5 for none before --timeout, 3 when no queue took the request, 8 when the connection was lost, 130 on Ctrl-C.",
      ),
    'send the request to',
  )
    .option('-f, --file <path>', "read the body from a file ('-' for stdin)")
    .addOption(
      new Option(
        '-t, --timeout <duration>',
        'how long to wait for the reply, e.g. 500ms, 10s, 1m (a bare number is ms)',
      )
        .argParser(durationFlag)
        .default(30_000, '30s'),
    )
    .option('--json', 'print the reply as one JSON object: body, properties, headers')
  withCommonOptions(
    withPropertyOptions(command, 'message id').option(
      '--persistent',
      'a persistent request (kept by a durable queue across a broker restart)',
    ),
  )
    .addHelpText(
      'after',
      `
The request carries replyTo and a correlation id of its own, so --reply-to and --correlation-id
are not flags of call. It is not persistent unless --persistent, and expires after --timeout
unless --expiration says otherwise.

Examples:
  lapinmq call prices EUR
  lapinmq call prices '{"sku": "A-1"}' --content-type application/json --json
  lapinmq call --exchange rpc --routing-key prices.eu --file request.bin --timeout 5s > reply.bin`,
    )
    .action(async (queue: string | undefined, body: string | undefined, options: CallCliOptions) => {
      process.exitCode = await call(queue, body, options)
    })
}

async function call(queue: string | undefined, body: string | undefined, o: CallCliOptions): Promise<number> {
  const target = targetOf(queue, body, o)
  let request: Buffer = Buffer.alloc(0)
  for await (const message of readInput({ body: target.body, file: o.file, lines: false, command: 'call' })) {
    request = message.body
  }
  const options: CallOptions = { ...propertyOptions(o), timeout: o.timeout }
  if (o.persistent) options.persistent = true
  const connection = openConnection(o, 'call')
  const rpc = new RpcClient({ connection, timeout: o.timeout })
  const aborting = new AbortController()
  let stopping: Promise<void> | undefined
  const interrupt = handleInterrupts(() => {
    // Waiting for the reply: the call ends at once. Still connecting: the start ends.
    aborting.abort()
    stopping = rpc.stop()
  }, 'forced exit: a reply that comes now is dropped')
  try {
    await rpc.start()
    const started = performance.now()
    const where = target.queue ?? { exchange: target.exchange, routingKey: target.routingKey }
    const reply = await rpc.call(where, request, { ...options, signal: aborting.signal })
    const elapsed = performance.now() - started
    const output = o.json ? jsonLine(reply) : plainBody(reply.body, process.stdout.isTTY === true)
    process.stdout.write(output)
    if (!o.quiet) {
      const type = reply.properties.contentType
      const size = `${reply.body.length} ${reply.body.length === 1 ? 'byte' : 'bytes'}`
      process.stderr.write(
        `reply from ${target.label} in ${milliseconds(elapsed)}: ${size}${typeof type === 'string' ? `, ${quote(type)}` : ''}\n`,
      )
    }
    return ExitCode.OK
  } catch (err) {
    if (interrupt.signal !== undefined) {
      process.stderr.write(`lapinmq: interrupted: no reply from ${target.label}\n`)
      return ExitCode.INTERRUPTED
    }
    const hint = err instanceof LapinError ? hintFor(err, target, o.timeout) : undefined
    throw hint === undefined ? err : withHint(err, hint)
  } finally {
    interrupt.dispose()
    await stopping
    await rpc.stop()
    await connection.close()
  }
}

/** What to check after a call that got no reply. */
function hintFor(err: LapinError, target: Target, timeout: number): string | undefined {
  const { queue } = target
  if (err.code === 'UNROUTABLE') {
    return queue !== undefined
      ? `no queue ${quote(queue)} exists: is its server running? (a server consumes the queue it declared)`
      : `no queue is bound to exchange ${quote(target.exchange)} for routing key ${quote(target.routingKey)}`
  }
  if (err.code === 'RPC_TIMEOUT') {
    const check = queue !== undefined ? ` (lapinmq queue ${quote(queue)} shows its consumers)` : ''
    return `no server answered within ${formatDuration(timeout)}: is one running and keeping up?${check}`
  }
  return undefined
}

/** `4.2 ms` below a second, `3.2 s` above. */
function milliseconds(ms: number): string {
  return ms < 1000 ? `${ms.toFixed(1)} ms` : seconds(ms)
}
