/**
 * @module bench/report
 * Medians of repeated runs, ratios against socat and direct TCP, the issue's targets, and the markdown.
 */
export type Run = { scenario: string; relay: string } & Record<string, number | string>

type Medians = Record<string, number>

export interface Summary {
  meta: { quick: boolean; reps: number; seconds: number } & Record<string, unknown>
  /** scenario → relay → median of each metric (and `runs`, `failed` counts). */
  results: Record<string, Record<string, Medians>>
  /** scenario → relay → metric → relay's median ÷ socat's (or direct TCP's). */
  ratios: Record<string, Record<string, { vsSocat: Medians; vsDirect: Medians }>>
  /** The issue's targets, judged for each Gangway row present (one process, all cores). */
  targets: Array<{ relay: string; target: string; met: boolean | null; figures: string }>
}

/** The metrics each scenario is judged by. */
const KEY_METRICS: Record<string, string[]> = {
  up1: ['gbPerS', 'cpuSecPerGB'],
  up16: ['gbPerS', 'cpuSecPerGB'],
  down1: ['gbPerS', 'cpuSecPerGB'],
  down16: ['gbPerS', 'cpuSecPerGB'],
  latency: ['p50Us', 'p99Us', 'p999Us', 'warmP50Us', 'warmP99Us', 'warmP999Us'],
  connrate: ['perSecond'],
  idle: ['pssPerTunnelKiB', 'rssPerTunnelKiB', 'coldPssPerTunnelKiB'],
  slow1: ['heldMiB'],
  slowN: ['heldPerTunnelMiB'],
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

function derive(run: Run): Run {
  const out = { ...run }
  if (typeof run.bytes === 'number' && typeof run.seconds === 'number') {
    out.gbPerS = run.bytes / 1e9 / run.seconds
    const gb = run.bytes / 1e9
    if (typeof run.cpuSeconds === 'number') out.cpuSecPerGB = run.cpuSeconds / gb
    if (typeof run.minorFaults === 'number') out.minorFaultsPerGB = run.minorFaults / gb
    if (typeof run.majorFaults === 'number') out.majorFaultsPerGB = run.majorFaults / gb
    if (typeof run.scavenges === 'number') out.scavengesPerGB = run.scavenges / gb
    if (typeof run.markCompacts === 'number') out.markCompactsPerGB = run.markCompacts / gb
  }
  return out
}

export function summarise(runs: Run[], meta: Summary['meta']): Summary {
  const results: Summary['results'] = {}
  const grouped = new Map<string, Run[]>()
  for (const run of runs.map(derive)) {
    const key = `${run.scenario}\u0000${run.relay}`
    grouped.set(key, [...(grouped.get(key) ?? []), run])
  }
  for (const [key, group] of grouped) {
    const [scenario, relay] = key.split('\u0000') as [string, string]
    const ok = group.filter((r) => r.failed === undefined)
    const medians: Medians = { runs: ok.length, failed: group.length - ok.length }
    const keys = new Set(ok.flatMap((r) => Object.keys(r)))
    for (const k of keys) {
      const values = ok.map((r) => r[k]).filter((v): v is number => typeof v === 'number')
      if (values.length > 0 && k !== 'failed') medians[k] = median(values)
    }
    ;(results[scenario] ??= {})[relay] = medians
  }
  const ratios: Summary['ratios'] = {}
  for (const [scenario, byRelay] of Object.entries(results)) {
    for (const [relay, m] of Object.entries(byRelay)) {
      const vs = (base: Medians | undefined): Medians => {
        const r: Medians = {}
        for (const k of KEY_METRICS[scenario] ?? []) {
          const a = m[k]
          const b = base?.[k]
          if (a !== undefined && b !== undefined && b !== 0) r[k] = a / b
        }
        return r
      }
      ;(ratios[scenario] ??= {})[relay] = {
        vsSocat: vs(byRelay.socat),
        vsDirect: vs(byRelay['direct TCP']),
      }
    }
  }
  const judged = GANGWAY_ROWS.filter((relay) =>
    Object.values(results).some((byRelay) => byRelay[relay]),
  ).flatMap((relay) => targets(results, relay))
  return { meta, results, ratios, targets: judged }
}

/** The Gangway rows the targets are judged for. */
const GANGWAY_ROWS = ['gangway', 'gangway (all cores)']

function targets(results: Summary['results'], relay: string): Summary['targets'] {
  const g = (s: string) => results[s]?.[relay]
  // The strong reference (issue #15): socat with 64 KiB buffers; Debian's default socat if it is absent.
  const s = (sc: string) => results[sc]?.['socat -b 65536'] ?? results[sc]?.socat
  const sName = results.up1?.['socat -b 65536'] ? 'socat -b 65536' : 'socat'
  const out: Summary['targets'] = []
  const check = (target: string, ok: boolean | undefined, figures: string) =>
    out.push({ relay, target, met: ok === undefined ? null : ok, figures })
  for (const sc of ['up1', 'up16', 'down1', 'down16']) {
    const a = g(sc)?.gbPerS
    const b = s(sc)?.gbPerS
    check(
      `${label(sc)}: ≥ 1.0× ${sName}`,
      a !== undefined && b !== undefined ? a >= b : undefined,
      `${fmt(a, 2)} vs ${fmt(b, 2)} GB/s (${fmt(a && b ? a / b : undefined, 2)}×)`,
    )
    const cpu = g(sc)?.cpuSecPerGB
    const base = s(sc)?.cpuSecPerGB
    check(
      `${label(sc)}: CPU-s/GB ≤ ${sName}'s`,
      cpu !== undefined && base !== undefined ? cpu <= base : undefined,
      `${fmt(cpu, 2)} vs ${fmt(base, 2)} CPU-s/GB`,
    )
  }
  for (const [q, what] of [
    ['p50Us', 'p50'],
    ['p99Us', 'p99'],
    ['warmP50Us', 'p50, warm relay'],
    ['warmP99Us', 'p99, warm relay'],
  ] as const) {
    const a = g('latency')?.[q]
    const b = s('latency')?.[q]
    check(
      `echo latency ${what} ≤ ${sName}`,
      a !== undefined && b !== undefined ? a <= b : undefined,
      `${fmt(a, 0)} vs ${fmt(b, 0)} µs`,
    )
  }
  const idle = g('idle')
  check(
    '9000 idle tunnels at ≤ 12 KiB each',
    idle ? idle.tunnels! >= 9000 && idle.pssPerTunnelKiB! <= 12 : undefined,
    `${fmt(idle?.tunnels, 0)} tunnels, ${fmt(idle?.pssPerTunnelKiB, 1)} KiB each from a warm process (RSS ${fmt(idle?.rssPerTunnelKiB, 1)}; from start-up ${fmt(idle?.coldPssPerTunnelKiB, 1)})`,
  )
  const a = g('connrate')?.perSecond
  const b = s('connrate')?.perSecond
  check(
    'connection rate ≥ 1.5× socat',
    a !== undefined && b !== undefined ? a >= 1.5 * b : undefined,
    `${fmt(a, 0)} vs ${fmt(b, 0)} /s (${fmt(a && b ? a / b : undefined, 2)}×)`,
  )
  const held = g('slow1')?.heldMiB
  const perTunnel = g('slowN')?.heldPerTunnelMiB
  check(
    'slow reader < 2 MiB above idle (1 tunnel)',
    held !== undefined ? held < 2 : undefined,
    `${fmt(held, 2)} MiB`,
  )
  check(
    `slow reader < 2 MiB above idle (per tunnel, ${String(results.slowN?.[relay]?.tunnels ?? 'N')} slow tunnels)`,
    perTunnel !== undefined ? perTunnel < 2 : undefined,
    `${fmt(perTunnel, 2)} MiB per tunnel`,
  )
  return out
}

function label(scenario: string): string {
  return `${scenario.startsWith('up') ? 'upload' : 'download'} ×${scenario.replace(/\D/g, '')}`
}

function fmt(v: number | undefined, digits: number): string {
  return v === undefined || Number.isNaN(v) ? '–' : v.toFixed(digits)
}

const CLIENT_SPEAKS: Record<string, string> = {
  'direct TCP': 'TCP, no relay',
  socat: 'TCP → socat → TCP',
  'socat -b 65536': 'TCP → socat with 64 KiB buffers → TCP',
  websockify: 'WS → websockify → TCP',
  'naive ws+net': 'WS → naive relay → TCP',
  'minimal streaming relay': 'WS → minimal streaming relay → TCP',
  gangway: 'WS → gangway (1 process) → TCP',
  'gangway (all cores)': 'WS → gangway --workers 0 (a worker per core) → TCP',
  'gangway (alt)': 'WS → the --alt build of gangway → TCP',
}

/** The few headline figures per relay, for the README. */
export function renderHeadline(summary: Summary): string {
  const { results } = summary
  const get = (sc: string, relay: string, k: string) => results[sc]?.[relay]?.[k]
  const lines = [
    '| Relay (one process unless noted) | Up / down GB/s, 1 conn | Relay CPU-s per GB, up / down | Echo p50 / p99 µs | Connections/s | KiB per idle tunnel | Slow reader, MiB held per tunnel |',
    '| --- | --: | --: | --: | --: | --: | --: |',
  ]
  for (const r of relayOrder(summary)) {
    lines.push(
      `| ${r}${r.startsWith('socat') || r === 'websockify' ? ' (process per connection)' : ''} | ${fmt(get('up1', r, 'gbPerS'), 2)} / ${fmt(get('down1', r, 'gbPerS'), 2)} | ${fmt(get('up1', r, 'cpuSecPerGB'), 2)} / ${fmt(get('down1', r, 'cpuSecPerGB'), 2)} | ${fmt(get('latency', r, 'p50Us'), 0)} / ${fmt(get('latency', r, 'p99Us'), 0)} | ${fmt(get('connrate', r, 'perSecond'), 0)} | ${fmt(get('idle', r, 'pssPerTunnelKiB'), 1)} | ${fmt(get('slowN', r, 'heldPerTunnelMiB'), 2)} |`,
    )
  }
  return lines.join('\n')
}

function relayOrder(summary: Summary): string[] {
  const relays = [...new Set(Object.values(summary.results).flatMap((r) => Object.keys(r)))]
  const order = Object.keys(CLIENT_SPEAKS)
  return relays.sort((x, y) => order.indexOf(x) - order.indexOf(y))
}

export function renderMarkdown(summary: Summary): string {
  const { results, meta } = summary
  const relays = relayOrder(summary)
  const get = (sc: string, relay: string, k: string) => results[sc]?.[relay]?.[k]
  const failed = (sc: string, relay: string) =>
    (results[sc]?.[relay]?.failed ?? 0) > 0 ? ` (${results[sc]![relay]!.failed} failed)` : ''
  const cell = (sc: string, relay: string, k: string, d: number) =>
    `${fmt(get(sc, relay, k), d)}${failed(sc, relay)}`
  const lines: string[] = []
  const mb = meta.params as Record<string, number>
  lines.push('Headline (1 connection; details below):', '', renderHeadline(summary), '')
  lines.push(
    `Throughput: ${(mb.bytes! / 1024 / 1024).toFixed(0)} MiB per scenario in 64 KiB messages (split over the connections); GB/s = 10⁹ bytes/s. CPU: the relay's user+system seconds per GB moved.`,
    '',
    '| Relay (client → relay → target) | Up ×1 GB/s | Up ×16 | Down ×1 | Down ×16 | CPU-s/GB up ×1 | down ×1 | up ×16 | down ×16 | Peak RSS MiB (down ×16) |',
    '| --- | --: | --: | --: | --: | --: | --: | --: | --: | --: |',
  )
  for (const r of relays) {
    lines.push(
      `| ${r} (${CLIENT_SPEAKS[r] ?? ''}) | ${cell('up1', r, 'gbPerS', 2)} | ${cell('up16', r, 'gbPerS', 2)} | ${cell('down1', r, 'gbPerS', 2)} | ${cell('down16', r, 'gbPerS', 2)} | ${fmt(get('up1', r, 'cpuSecPerGB'), 2)} | ${fmt(get('down1', r, 'cpuSecPerGB'), 2)} | ${fmt(get('up16', r, 'cpuSecPerGB'), 2)} | ${fmt(get('down16', r, 'cpuSecPerGB'), 2)} | ${fmt(get('down16', r, 'peakRssMiB'), 0)} |`,
    )
  }
  lines.push(
    '',
    `Cost per GB moved, one connection (up / down): the relay's page faults (minor, major; from /proc/PID/stat, children included) and, for Node relays, garbage collections (scavenges, full mark-compacts; from --trace-gc).`,
    '',
    '| Relay | Minor faults per GB | Major faults per GB | Scavenges per GB | Mark-compacts per GB |',
    '| --- | --: | --: | --: | --: |',
  )
  const pair = (k: string, d: number) => (r: string) =>
    `${fmt(get('up1', r, k), d)} / ${fmt(get('down1', r, k), d)}`
  for (const r of relays.filter((x) => x !== 'direct TCP')) {
    lines.push(
      `| ${r} | ${pair('minorFaultsPerGB', 0)(r)} | ${pair('majorFaultsPerGB', 0)(r)} | ${pair('scavengesPerGB', 0)(r)} | ${pair('markCompactsPerGB', 1)(r)} |`,
    )
  }
  lines.push(
    '',
    `Echo: 64-byte round trips on one connection per relay (${mb.roundTrips} after 200 warm-up), every relay at once, paired: ${mb.latencySlice} round trips on each relay in turn (the order rotating; the first ${mb.latencyTurnWarmup} of each turn not counted), so that the machine's slow stretches fall on every relay alike; on the relays as started, then again on new connections once ${mb.warmUp} others (${mb.warmUpForking} for forking relays) have each opened, echoed once and closed: the warm relay. Connections: open + one 64-byte echo + close, 16 in parallel, ${mb.connMs! / 1000} s. Idle: relay memory (Pss, summed over its processes) per idle tunnel, from a warm relay (${mb.warmUp} tunnels, or ${mb.warmUpForking} for forking relays, opened and closed first; the cold figure, from start-up, is in the JSON). Slow reader: the relay's peak memory above the open-but-idle level while the client reads nothing for ${mb.slowMs! / 1000} s and the target pushes (after a 16 MiB warm-up download): 1 tunnel with ${mb.slow1Bytes! / 1024 / 1024} MiB pushed, and ${mb.slowTunnels} tunnels with ${mb.slowBytes! / 1024 / 1024} MiB each, divided by ${mb.slowTunnels}.`,
    '',
    `| Relay | Echo p50 µs | p99 µs | p99.9 µs | Warm relay: p50 / p99 / p99.9 µs | Connections/s | Idle KiB per tunnel (tunnels) | Slow reader MiB held: 1 tunnel | per tunnel of ${mb.slowTunnels} |`,
    '| --- | --: | --: | --: | --: | --: | --: | --: | --: |',
  )
  for (const r of relays) {
    const tunnels = get('idle', r, 'tunnels')
    lines.push(
      `| ${r} | ${cell('latency', r, 'p50Us', 0)} | ${cell('latency', r, 'p99Us', 0)} | ${cell('latency', r, 'p999Us', 0)} | ${cell('latency', r, 'warmP50Us', 0)} / ${cell('latency', r, 'warmP99Us', 0)} / ${cell('latency', r, 'warmP999Us', 0)} | ${cell('connrate', r, 'perSecond', 0)} | ${tunnels === undefined ? '–' : `${cell('idle', r, 'pssPerTunnelKiB', 1)} (${tunnels})`} | ${cell('slow1', r, 'heldMiB', 2)} | ${cell('slowN', r, 'heldPerTunnelMiB', 2)} |`,
    )
  }
  const judged = GANGWAY_ROWS.filter((r) => summary.targets.some((t) => t.relay === r))
  lines.push(
    '',
    `| Target | ${judged.map((r) => `${r}: met | figures`).join(' | ')} |`,
    `| --- | ${judged.map(() => '--- | ---').join(' | ')} |`,
  )
  for (const target of [...new Set(summary.targets.map((t) => t.target))]) {
    const cells = judged.map((r) => {
      const t = summary.targets.find((x) => x.relay === r && x.target === target)
      if (!t) return '– | –'
      return `${t.met === null ? '–' : t.met ? 'yes' : '**no**'} | ${t.figures}`
    })
    lines.push(`| ${target} | ${cells.join(' | ')} |`)
  }
  const before = meta.machineBefore as Record<string, unknown>
  const after = meta.machineAfter as Record<string, unknown>
  lines.push(
    '',
    `${meta.quick ? 'Quick smoke' : 'Full run'}, medians of ${meta.reps} interleaved repetition(s), ${meta.seconds.toFixed(0)} s; ${String(before.cpus)} × ${String(before.cpuModel)}, Linux ${String(before.kernel)}, Node ${String(before.node)}, ${String(before.date)}.`,
    `Load before: \`${String(before.uptime)}\`; after: \`${String(after.uptime)}\`.`,
    '',
  )
  return lines.join('\n')
}
