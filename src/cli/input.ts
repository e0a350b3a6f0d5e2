// Where `lapinmq publish` gets its messages: the body argument, a file, or stdin; the whole input
// as one message, or one message per line (--lines). Lines are streamed, so a long input is never
// held in memory at once.
import { createReadStream } from 'node:fs'
import { UsageError } from './exit-codes.js'

/** One message to publish: its number (1-based), the input line it came from, and its body. */
export interface InputMessage {
  n: number
  line: number | undefined
  body: Buffer
}

export interface InputOptions {
  /** The body argument, if any. */
  body: string | undefined
  /** --file: a path, or '-' for stdin. */
  file: string | undefined
  /** --lines: one message per line (empty lines skipped). */
  lines: boolean
  /** The command that reads, for the example in an error. @default 'publish' */
  command?: string
}

/** Yields the messages of the input, in order. */
export async function* readInput(options: InputOptions): AsyncGenerator<InputMessage> {
  if (options.body !== undefined && options.file !== undefined) {
    throw new UsageError('give the body as an argument or with --file, not both')
  }
  if (options.body !== undefined) {
    if (!options.lines) {
      yield { n: 1, line: undefined, body: Buffer.from(options.body) }
      return
    }
    yield* numbered(lines([Buffer.from(options.body)]))
    return
  }
  const fromStdin = options.file === undefined || options.file === '-'
  if (fromStdin && process.stdin.isTTY) {
    throw new UsageError(
      `no message body: give it as an argument, with --file, or on stdin (e.g. echo hello | lapinmq ${options.command ?? 'publish'} q)`,
    )
  }
  const stream = fromStdin ? process.stdin : createReadStream(options.file as string)
  try {
    if (!options.lines) {
      yield { n: 1, line: undefined, body: await readAll(stream) }
      return
    }
    yield* numbered(lines(stream))
  } finally {
    // Publishing may stop before the end of the input: a half-read stdin would keep the process alive.
    stream.destroy()
  }
}

async function* numbered(input: AsyncIterable<Buffer>): AsyncGenerator<InputMessage> {
  let n = 0
  let line = 0
  for await (const text of input) {
    line++
    const body = text.at(-1) === 0x0d ? text.subarray(0, -1) : text
    if (body.length === 0) continue
    n++
    yield { n, line, body }
  }
}

/**
 * The lines of a byte stream, without their newline, as bytes: a body need not be text, and
 * decoding it would turn every byte that is not UTF-8 into U+FFFD.
 */
async function* lines(input: AsyncIterable<Buffer | string> | Iterable<Buffer>): AsyncGenerator<Buffer> {
  // The start of a line that began in an earlier chunk (kept in pieces: a long line is copied once).
  let pieces: Buffer[] = []
  for await (const chunk of input) {
    const data = typeof chunk === 'string' ? Buffer.from(chunk) : chunk
    let start = 0
    for (let end = data.indexOf(0x0a); end !== -1; end = data.indexOf(0x0a, start)) {
      const tail = data.subarray(start, end)
      yield pieces.length === 0 ? tail : Buffer.concat([...pieces, tail])
      pieces = []
      start = end + 1
    }
    if (start < data.length) pieces.push(data.subarray(start))
  }
  if (pieces.length > 0) yield Buffer.concat(pieces)
}

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk)
  return Buffer.concat(chunks)
}
