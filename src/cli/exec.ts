// `consume --exec "cmd"`: runs a shell command per message, the body on its stdin and the
// message's delivery details in LAPINMQ_* variables. Its exit status decides the message's fate.
import { type ChildProcess, spawn } from 'node:child_process'
import type { Message } from '../index.ts'

/** Children still running, so that a command that must end can end them. */
const running = new Set<ChildProcess>()

/** How a command's output reaches the terminal: inherited, or through `write` (whole lines). */
export type OutputMode = 'inherit' | ((stream: 'stdout' | 'stderr', lines: string) => void)

/**
 * Runs `command` through the shell with the message body on stdin. Resolves with its exit code
 * (`null` when a signal ended it); a command that cannot start resolves `null` too.
 */
export function runCommand(
  command: string,
  queue: string,
  message: Message,
  output: OutputMode,
): Promise<number | null> {
  const env = {
    ...process.env,
    LAPINMQ_QUEUE: queue,
    LAPINMQ_EXCHANGE: message.exchange,
    LAPINMQ_ROUTING_KEY: message.routingKey,
    LAPINMQ_REDELIVERED: message.redelivered ? '1' : '0',
    LAPINMQ_MESSAGE_ID: stringProperty(message.properties.messageId),
    LAPINMQ_CORRELATION_ID: stringProperty(message.properties.correlationId),
    LAPINMQ_HEADERS: JSON.stringify(message.headers, (_k, v: unknown) =>
      typeof v === 'bigint' ? v.toString() : v,
    ),
  }
  const child = spawn(command, {
    shell: true,
    env,
    stdio: ['pipe', output === 'inherit' ? 'inherit' : 'pipe', output === 'inherit' ? 'inherit' : 'pipe'],
  })
  running.add(child)
  if (output !== 'inherit') {
    forwardLines(child.stdout, (text) => output('stdout', text))
    forwardLines(child.stderr, (text) => output('stderr', text))
  }
  // A command that does not read its stdin closes it early: EPIPE is no failure of ours.
  child.stdin?.on('error', () => {})
  child.stdin?.end(message.body)
  return new Promise((resolve) => {
    child.on('error', () => {
      running.delete(child)
      resolve(null)
    })
    child.on('close', (code) => {
      running.delete(child)
      resolve(code)
    })
  })
}

/** Sends SIGTERM to every command still running (a stop that timed out). */
export function terminateCommands(): number {
  for (const child of running) child.kill('SIGTERM')
  return running.size
}

function stringProperty(value: unknown): string {
  return typeof value === 'string' ? value : ''
}

/** Calls `write` with whole lines (newline included) as they come, and the rest at the end. */
function forwardLines(stream: NodeJS.ReadableStream | null, write: (text: string) => void): void {
  if (!stream) return
  let partial = ''
  stream.setEncoding('utf8')
  stream.on('data', (chunk: string) => {
    const text = partial + chunk
    const end = text.lastIndexOf('\n')
    partial = text.slice(end + 1)
    if (end >= 0) write(text.slice(0, end + 1))
  })
  stream.on('end', () => {
    if (partial) write(`${partial}\n`)
  })
}
