// S14's "no OTel API" peer: its process runs with `--import` of this file, which registers a resolve
// hook (no-otel-api-hooks.mjs) that makes every import of an `@opentelemetry/*` package fail as if
// it were not installed: lapinmq's dynamic import('@opentelemetry/api') rejects, as in an
// application that does not have the API. A plain .mjs file: it runs before tsx's hooks matter.
import { register } from 'node:module'

register('./no-otel-api-hooks.mjs', import.meta.url)
