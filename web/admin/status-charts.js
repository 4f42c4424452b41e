// Gangway status page charts: the samples the page polls (cumulative byte and refusal counts, open tunnels)
// kept for the last minutes, and plain <canvas> drawings of them. No library, no build step, nothing fetched
// from elsewhere. Each chart also carries its numbers as data attributes and an aria-label, so that a screen
// reader (and a test) reads the same values the lines show.

/** How far back the charts look. */
export const WINDOW_MS = 5 * 60_000
/** Most samples kept (one a second for the window, with slack for a faster poll). */
const MAX_SAMPLES = 600

const COLORS = {
  up: '#2563eb',
  down: '#16a34a',
  open: '#7c3aed',
  bar: '#dc2626',
  grid: '#e5e7eb',
  text: '#5b6472',
}

/**
 * Samples over the window: `{ t, up, down, open, refusals }`, where up/down/refusals are cumulative counts
 * as the daemon reports them. Rates and per-window counts are differences between samples; a count that
 * goes down (a worker restarted and its counts started again) counts as no traffic, never as negative.
 */
export function createHistory(windowMs = WINDOW_MS) {
  const samples = []
  return {
    samples,
    add(sample) {
      const last = samples[samples.length - 1]
      if (last !== undefined && sample.t <= last.t) return
      samples.push(sample)
      while (
        samples.length > MAX_SAMPLES ||
        (samples.length > 1 && sample.t - samples[0].t > windowMs)
      ) {
        samples.shift()
      }
    },
    /** Bytes per second between consecutive samples: `[{ t, up, down }]`. */
    throughput() {
      const out = []
      for (let i = 1; i < samples.length; i++) {
        const a = samples[i - 1]
        const b = samples[i]
        const seconds = Math.max((b.t - a.t) / 1000, 0.001)
        out.push({ t: b.t, up: grown(a.up, b.up) / seconds, down: grown(a.down, b.down) / seconds })
      }
      return out
    },
    /** Bytes relayed within the window, both ways. */
    bytes() {
      let up = 0
      let down = 0
      for (let i = 1; i < samples.length; i++) {
        up += grown(samples[i - 1].up, samples[i].up)
        down += grown(samples[i - 1].down, samples[i].down)
      }
      return { up, down }
    },
    /** Refusals within the window, by reason. */
    refusals() {
      const out = {}
      for (let i = 1; i < samples.length; i++) {
        const before = samples[i - 1].refusals
        for (const [reason, n] of Object.entries(samples[i].refusals)) {
          const added = grown(before[reason] ?? 0, n)
          if (added > 0) out[reason] = (out[reason] ?? 0) + added
        }
      }
      return out
    },
  }
}

function grown(before, after) {
  return after > before ? after - before : 0
}

/** A canvas sized to its box in device pixels, with a 2D context in CSS pixels. */
function prepare(canvas) {
  const ratio = window.devicePixelRatio || 1
  const width = canvas.clientWidth || 320
  const height = canvas.clientHeight || 140
  if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
    canvas.width = Math.round(width * ratio)
    canvas.height = Math.round(height * ratio)
  }
  const ctx = canvas.getContext('2d')
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0)
  ctx.clearRect(0, 0, width, height)
  ctx.fillStyle = '#fff'
  ctx.fillRect(0, 0, width, height)
  ctx.font = '11px system-ui, sans-serif'
  return { ctx, width, height }
}

const PAD = { left: 72, right: 8, top: 18, bottom: 18 }

/**
 * Lines over time. `series`: `[{ name, color, dashed?, points: [{ t, v }] }]`; `now` is the right edge;
 * `format` writes a value for the axis, whose top is at least `minTop`.
 */
export function drawLines(canvas, { series, now, windowMs = WINDOW_MS, format, minTop = 1 }) {
  const { ctx, width, height } = prepare(canvas)
  const plotW = width - PAD.left - PAD.right
  const plotH = height - PAD.top - PAD.bottom
  let max = 0
  for (const s of series) for (const p of s.points) max = Math.max(max, p.v)
  const top = niceCeiling(Math.max(max, minTop))
  // Grid and axis labels: 0, half and the top.
  ctx.strokeStyle = COLORS.grid
  ctx.fillStyle = COLORS.text
  ctx.lineWidth = 1
  for (const fraction of [0, 0.5, 1]) {
    const y = PAD.top + plotH * (1 - fraction)
    ctx.beginPath()
    ctx.moveTo(PAD.left, y + 0.5)
    ctx.lineTo(width - PAD.right, y + 0.5)
    ctx.stroke()
    ctx.textAlign = 'right'
    ctx.textBaseline = 'middle'
    ctx.fillText(format(top * fraction), PAD.left - 6, y)
  }
  ctx.textAlign = 'left'
  ctx.textBaseline = 'top'
  ctx.fillText(`-${Math.round(windowMs / 60_000)} min`, PAD.left, height - PAD.bottom + 4)
  ctx.textAlign = 'right'
  ctx.fillText('now', width - PAD.right, height - PAD.bottom + 4)
  // Legend, top right.
  let x = width - PAD.right
  ctx.textBaseline = 'top'
  for (const s of [...series].reverse()) {
    ctx.fillStyle = s.color
    ctx.textAlign = 'right'
    ctx.fillText(s.name, x, 2)
    x -= ctx.measureText(s.name).width + 10
    ctx.fillRect(x, 5, 8, 3)
    x -= 10
  }
  // The lines.
  const xOf = (t) => PAD.left + plotW * (1 - Math.min(Math.max((now - t) / windowMs, 0), 1))
  const yOf = (v) => PAD.top + plotH * (1 - (top === 0 ? 0 : v / top))
  ctx.lineWidth = 2
  ctx.lineJoin = 'round'
  for (const s of series) {
    if (s.points.length === 0) continue
    ctx.strokeStyle = s.color
    // A dashed line stays visible where it runs over another (an echo's up and down are equal).
    ctx.setLineDash(s.dashed ? [6, 4] : [])
    ctx.beginPath()
    s.points.forEach((p, i) =>
      i === 0 ? ctx.moveTo(xOf(p.t), yOf(p.v)) : ctx.lineTo(xOf(p.t), yOf(p.v)),
    )
    if (s.points.length === 1) ctx.lineTo(xOf(s.points[0].t) - 2, yOf(s.points[0].v))
    ctx.stroke()
  }
  ctx.setLineDash([])
}

/** Horizontal bars, one per entry `[label, value]`, largest first; `empty` when there is none. */
export function drawBars(canvas, { entries, empty }) {
  const { ctx, width, height } = prepare(canvas)
  ctx.textBaseline = 'middle'
  if (entries.length === 0) {
    ctx.fillStyle = COLORS.text
    ctx.textAlign = 'center'
    ctx.fillText(empty, width / 2, height / 2)
    return
  }
  const sorted = [...entries].sort((a, b) => b[1] - a[1])
  const max = Math.max(...sorted.map((e) => e[1]))
  const labelW = 150
  const rowH = Math.min(24, (height - 8) / sorted.length)
  sorted.forEach(([label, value], i) => {
    const y = 4 + i * rowH
    ctx.fillStyle = COLORS.text
    ctx.textAlign = 'right'
    ctx.fillText(label, labelW - 6, y + rowH / 2)
    const barW = Math.max(2, ((width - labelW - 48) * value) / max)
    ctx.fillStyle = COLORS.bar
    ctx.fillRect(labelW, y + 3, barW, rowH - 6)
    ctx.fillStyle = COLORS.text
    ctx.textAlign = 'left'
    ctx.fillText(String(value), labelW + barW + 6, y + rowH / 2)
  })
}

/** 1, 2 or 4 times a power of ten, at least `v` (and at least 1): its half is a round number too. */
function niceCeiling(v) {
  if (!(v > 1)) return 1
  const power = 10 ** Math.floor(Math.log10(v))
  for (const step of [1, 2, 4, 10]) if (step * power >= v) return step * power
  return 10 * power
}

export { COLORS }
