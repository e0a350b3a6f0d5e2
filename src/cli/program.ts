// The `lapinmq` program: its commands, and how a run ends. Every error ends in one clear line on
// stderr and an exit code (see exit-codes.ts); usage errors show the command's help.
import { createRequire } from 'node:module'
import { Command, CommanderError } from 'commander'
import { LapinError } from '../index.js'
import { callCommand } from './call.js'
import { queueArgHint } from './common.js'
import { consumeCommand } from './consume.js'
import { demoCommand } from './demo-run.js'
import { describeError, ExitCode, exitCodeOf, hintOf } from './exit-codes.js'
import { pipeCommand } from './pipe.js'
import { publishCommand } from './publish.js'
import { queueCommand } from './queue.js'
import { topologyCommands } from './topology.js'

const { version } = createRequire(import.meta.url)('../../package.json') as { version: string }

export function program(): Command {
  const lapinmq = new Command('lapinmq')
    .description(
      'RabbitMQ from the command line, used correctly: publisher confirms, manual acks, graceful stops. The broker comes from --url, else RABBITMQ_URL, else RABBITMQ_HOST, _PORT, _USERNAME, _PASSWORD, _VHOST, else amqp://guest:guest@localhost:5672/. Passwords are never printed.',
    )
    .version(version)
    .exitOverride()
    .showHelpAfterError()
  publishCommand(lapinmq)
  callCommand(lapinmq)
  consumeCommand(lapinmq)
  pipeCommand(lapinmq)
  queueCommand(lapinmq)
  topologyCommands(lapinmq)
  demoCommand(lapinmq)
  lapinmq.addHelpText('after', '\nRun lapinmq <command> --help for its flags and examples.')
  return lapinmq
}

/** Runs the command line `argv` (without node and the script) and returns the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  process.exitCode = undefined
  // A reader that went away (`lapinmq consume q | head`) is no crash: consume stops on it, and the
  // other commands have nothing more to say.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE') throw err
    })
  }
  try {
    await program().parseAsync([...argv], { from: 'user' })
    return Number(process.exitCode ?? ExitCode.OK)
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander has printed the error (and the help) already; --help and --version end here too.
      return err.exitCode === 0 ? ExitCode.OK : ExitCode.USAGE
    }
    const code = exitCodeOf(err)
    const hint = code === ExitCode.USAGE ? ` (see lapinmq ${argv[0] ?? ''} --help)` : ''
    process.stderr.write(`lapinmq: ${code === ExitCode.USAGE ? 'error: ' : ''}${describeError(err)}${hint}\n`)
    if (
      err instanceof LapinError &&
      err.code === 'PRECONDITION_FAILED' &&
      /inequivalent arg/.test(err.message) &&
      (argv[0] === 'consume' || argv[0] === 'pipe')
    ) {
      process.stderr.write(`lapinmq: ${queueArgHint}\n`)
    }
    const advice = hintOf(err)
    if (advice !== undefined) process.stderr.write(`lapinmq: ${advice}\n`)
    return code
  }
}
