// `consume --exec "cmd"`: runs a shell command per message, the body on its stdin and the
// message's delivery details in LAPINMQ_* variables. Its exit status decides the message's fate.
import { type ChildProcess, spawn } from 'node:child_process'
import type { Message } from '../index.js'

/** Children still running, so that a command that must end can end them. */
const running = new Set<ChildProcess>()

/** How a command's output reaches the terminal: inherited, or through `write` (whole lines). */
export type OutputMode = 'inherit' | ((stream: 'stdout' | 'stderr', lines: string) => void)

/**
 * The longest `NAME=value` one variable may be: Linux refuses to start a program given a longer
 * one (E2BIG), whatever room the environment as a whole has left.
 */
const maxVariableBytes = 128 * 1024 - 1

/**
 * lapinmq's environment for the commands, without the broker settings: they may hold the broker's
 * password (RABBITMQ_URL, RABBITMQ_PASSWORD) or point at a client key, and a command run per
 * message has no need of them.
 */
function commandEnvironment(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [name, value] of Object.entries(process.env)) {
    if (!name.startsWith('RABBITMQ_')) env[name] = value
  }
  return env
}

/**
 * The LAPINMQ_* variables of a message. A value that no environment can hold (a NUL byte ends a
 * C string; a very long one makes the start fail) is left out, with a warning: the command still
 * runs on the body.
 */
function messageVariables(
  queue: string,
  message: Message,
  warn: (text: string) => void,
): Record<string, string> {
  const variables: Record<string, string> = {
    LAPINMQ_QUEUE: queue,
    LAPINMQ_EXCHANGE: message.exchange,
    LAPINMQ_ROUTING_KEY: message.routingKey,
    LAPINMQ_REDELIVERED: message.redelivered ? '1' : '0',
    LAPINMQ_ATTEMPT: String(message.attempt),
    LAPINMQ_MESSAGE_ID: stringProperty(message.properties.messageId),
    LAPINMQ_CORRELATION_ID: stringProperty(message.properties.correlationId),
    LAPINMQ_HEADERS: JSON.stringify(message.headers, (_k, v: unknown) =>
      typeof v === 'bigint' ? v.toString() : v,
    ),
  }
  for (const [name, value] of Object.entries(variables)) {
    if (value.includes('\0')) {
      warn(`${name} left out: it holds a NUL byte`)
      delete variables[name]
    } else if (Buffer.byteLength(`${name}=${value}`) > maxVariableBytes) {
      warn(`${name} left out: too big for the environment (${Buffer.byteLength(value)} bytes)`)
      delete variables[name]
    }
  }
  return variables
}

/**
 * Runs `command` through the shell with the message body on stdin. Resolves with its exit code
 * (`null` when a signal ended it, or when it could not start: `warn` says why). Never throws.
 *
 * Each command leads a process group of its own, so that a Ctrl-C at the terminal reaches lapinmq
 * alone, which lets the commands finish or ends them (see {@link terminateCommands}).
 */
export function runCommand(
  command: string,
  queue: string,
  message: Message,
  output: OutputMode,
  warn: (text: string) => void,
): Promise<number | null> {
  const base = commandEnvironment()
  const start = (variables: Record<string, string>): ChildProcess =>
    spawn(command, {
      shell: true,
      env: { ...base, ...variables },
      detached: true,
      stdio: ['pipe', output === 'inherit' ? 'inherit' : 'pipe', output === 'inherit' ? 'inherit' : 'pipe'],
    })
  let child: ChildProcess
  try {
    try {
      child = start(messageVariables(queue, message, warn))
    } catch (err) {
      // The variables together were still too much for the system: the body alone, then.
      if ((err as NodeJS.ErrnoException).code !== 'E2BIG') throw err
      warn('LAPINMQ_* variables left out: too big together for the environment')
      child = start({})
    }
  } catch (err) {
    warn(`the command could not start: ${(err as Error).message}`)
    return Promise.resolve(null)
  }
  running.add(child)
  if (output !== 'inherit') {
    forwardLines(child.stdout, (text) => output('stdout', text))
    forwardLines(child.stderr, (text) => output('stderr', text))
  }
  // A command that does not read its stdin closes it early: EPIPE is no failure of ours.
  child.stdin?.on('error', () => {})
  child.stdin?.end(message.body)
  return new Promise((resolve) => {
    child.on('error', (err) => {
      running.delete(child)
      warn(`the command could not start: ${err.message}`)
      resolve(null)
    })
    child.on('close', (code) => {
      running.delete(child)
      resolve(code)
    })
  })
}

/** Commands running now. */
export function runningCommands(): number {
  return running.size
}

/** Sends `signal` to every command still running, and to what each one started. */
export function terminateCommands(signal: NodeJS.Signals = 'SIGTERM'): number {
  for (const child of running) {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, signal)
    } catch {
      child.kill(signal) // its group is gone already
    }
  }
  return running.size
}

function stringProperty(value: unknown): string {
  return typeof value === 'string' ? value : ''
}

/** Characters of an unfinished line kept before it is passed on anyway. */
const maxPartialLine = 64 * 1024

/**
 * Calls `write` with whole lines (newline included) as they come, and the rest at the end; an
 * unfinished line longer than 64 K characters is passed on as a line of its own.
 */
export function forwardLines(stream: NodeJS.ReadableStream | null, write: (text: string) => void): void {
  if (!stream) return
  let partial = ''
  stream.setEncoding('utf8')
  stream.on('data', (chunk: string) => {
    const text = partial + chunk
    const end = text.lastIndexOf('\n')
    partial = text.slice(end + 1)
    if (end >= 0) write(text.slice(0, end + 1))
    // A command that prints without newlines: pass what it printed on rather than hold it all.
    if (partial.length > maxPartialLine) {
      write(`${partial}\n`)
      partial = ''
    }
  })
  stream.on('end', () => {
    if (partial) write(`${partial}\n`)
  })
}
