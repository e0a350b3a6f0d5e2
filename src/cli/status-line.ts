// The live status of a running command. On a terminal: one line redrawn in place a few times a
// second (carriage return and erase-line), with a little colour unless NO_COLOR is set. Anywhere
// else (a pipe, a file, CI logs): plain lines at a slow pace, never a control character.
import { stripVTControlCharacters, styleText } from 'node:util'

export interface StatusLineOptions {
  /** Where the status goes: stderr when stdout carries data (consume), else stdout. */
  stream: NodeJS.WriteStream
  /** The status text; `tty` is true when it is drawn in place (styling allowed). */
  render: (tty: boolean) => string
  /** Print nothing but warnings. */
  quiet?: boolean
  /** ms between redraws on a terminal. @default 200 */
  ttyInterval?: number
  /** ms between plain lines when not a terminal; 0 prints only the final line. @default 1000 */
  plainInterval?: number
}

type Style = Parameters<typeof styleText>[0]

/** A status line that is live on a terminal and plain elsewhere. */
export class StatusLine {
  readonly tty: boolean
  readonly #options: StatusLineOptions
  #timer: NodeJS.Timeout | undefined
  #drawn = false
  #finished = false

  constructor(options: StatusLineOptions) {
    this.#options = options
    this.tty = options.stream.isTTY === true
  }

  /** Starts the periodic redraws (or plain lines). */
  start(): this {
    if (this.#options.quiet || this.#timer) return this
    const interval = this.tty ? (this.#options.ttyInterval ?? 200) : (this.#options.plainInterval ?? 1000)
    if (interval > 0) {
      this.#timer = setInterval(() => (this.tty ? this.#draw() : this.#plain()), interval)
      this.#timer.unref()
    }
    if (this.tty) this.#draw()
    return this
  }

  /** Styles text on a colour terminal; plain text anywhere else. */
  paint(style: Style, text: string): string {
    return this.tty && !process.env.NO_COLOR ? styleText(style, text) : text
  }

  /** Prints a line of information (suppressed by --quiet) above the live line. */
  info(text: string): void {
    if (!this.#options.quiet) this.above(() => this.#options.stream.write(`${text}\n`))
  }

  /** Prints a warning on stderr (never suppressed) above the live line. */
  warn(text: string): void {
    this.above(() => process.stderr.write(`${text}\n`))
  }

  /**
   * Runs `write` (which prints whole lines) with the live line out of the way. The line comes back
   * with the next periodic redraw: redrawing it after every write would cost a terminal as much
   * as the lines themselves when messages stream past.
   */
  above(write: () => void): void {
    if (this.#drawn) {
      this.#options.stream.write('\r\x1b[2K')
      this.#drawn = false
    }
    write()
  }

  /**
   * Stops. With `final`, draws the status a last time and leaves it on screen (a last plain line
   * when not a terminal); without, erases the live line (a summary follows). Idempotent.
   */
  finish(final = true): void {
    if (this.#finished) return
    clearInterval(this.#timer)
    this.#timer = undefined
    if (!this.#options.quiet && final) {
      if (this.tty) {
        this.#draw()
        this.#options.stream.write('\n')
      } else this.#plain()
    } else if (this.#drawn) this.#options.stream.write('\r\x1b[2K')
    this.#drawn = false
    this.#finished = true
  }

  #draw(): void {
    if (this.#finished) return
    let text = this.#options.render(true)
    const width = (this.#options.stream.columns ?? 80) - 1
    if (stripVTControlCharacters(text).length > width) {
      // Too long for the terminal: a wrapped line cannot be redrawn in place. Drop the styling, cut.
      text = `${stripVTControlCharacters(text).slice(0, Math.max(0, width - 1))}…`
    }
    this.#options.stream.write(`\r\x1b[2K${text}`)
    this.#drawn = true
  }

  #plain(): void {
    this.#options.stream.write(`${stripVTControlCharacters(this.#options.render(false))}\n`)
  }
}

/** Messages per second over the last couple of seconds. */
export class RateMeter {
  readonly #samples: { at: number; total: number }[] = []
  readonly #windowMs: number

  constructor(windowMs = 2000) {
    this.#windowMs = windowMs
  }

  /** Records the running total now and returns the rate over the window. */
  rate(total: number): number {
    const now = performance.now()
    this.#samples.push({ at: now, total })
    while (this.#samples.length > 2 && now - (this.#samples[1]?.at ?? now) >= this.#windowMs) {
      this.#samples.shift()
    }
    const first = this.#samples[0]
    if (!first || now - first.at < 1) return 0
    return ((total - first.total) * 1000) / (now - first.at)
  }
}

/** `12,345` */
export function count(n: number): string {
  return Math.round(n).toLocaleString('en-US')
}

/** Seconds with one decimal: `3.2 s` */
export function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`
}

/** A progress bar, `█████░░░░░ 50%`, for a live line (`done` of `total`). */
export function bar(done: number, total: number, width = 16): string {
  const fraction = total > 0 ? Math.min(1, Math.max(0, done / total)) : 0
  const full = Math.round(fraction * width)
  return `${'█'.repeat(full)}${'░'.repeat(width - full)} ${String(Math.floor(fraction * 100)).padStart(3)}%`
}
