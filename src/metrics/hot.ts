/**
 * Hot-path series. prom-client hashes the label object on every observe() and inc() (about
 * 0.3–0.7 µs each, several per decision); these counters and histograms bind a label set once
 * (`child(labels)`) so that recording is a few numeric writes. They register with a prom-client
 * Registry like any prom-client metric and report in prom-client's own shape (`get()`), so the
 * exposition format and the worker-group aggregation (AggregatorRegistry) stay prom-client's.
 */
import type { Registry } from 'prom-client'

type Labels<L extends string> = Record<L, string>

interface MetricValue { labels: Record<string, string | number>, value: number, metricName?: string }
interface MetricData { name: string, help: string, type: 'counter' | 'histogram', values: MetricValue[], aggregator: 'sum' }

export interface CounterChild { inc: (n?: number) => void }
export interface HistogramChild { observe: (value: number) => void }

abstract class HotMetric<L extends string, C> {
  readonly aggregator = 'sum' as const
  readonly #children = new Map<string, C>()

  constructor (readonly name: string, readonly help: string, readonly labelNames: readonly L[], registers: Registry[]) {
    for (const r of registers) r.registerMetric(this as unknown as Parameters<Registry['registerMetric']>[0])
  }

  protected abstract create (labels: Labels<L>): C

  /** The series of one label set (create once, keep, record without lookups). */
  child (labels: Labels<L>): C {
    let key = ''
    for (const n of this.labelNames) key += `${labels[n]}\u0000`
    let c = this.#children.get(key)
    if (c === undefined) {
      for (const n of this.labelNames) {
        if (typeof labels[n] !== 'string') throw new TypeError(`metric ${this.name}: label ${n} is missing`)
      }
      c = this.create({ ...labels })
      this.#children.set(key, c)
    }
    return c
  }

  protected children (): IterableIterator<C> {
    return this.#children.values()
  }
}

class CounterSeries<L extends string> implements CounterChild {
  value = 0
  constructor (readonly labels: Labels<L>) {}
  inc (n = 1): void {
    if (!(n >= 0)) throw new TypeError('counters only go up')
    this.value += n
  }
}

export class HotCounter<L extends string = never> extends HotMetric<L, CounterSeries<L>> {
  readonly type = 'counter' as const

  constructor (name: string, help: string, labelNames: readonly L[], registers: Registry[]) {
    super(name, help, labelNames, registers)
    // an unlabelled counter reports 0 before its first increment, as prom-client's does
    if (labelNames.length === 0) this.child({} as Labels<L>)
  }

  /** The unlabelled series (counters declared without labels). */
  get series (): CounterChild { return this.child({} as Labels<L>) }

  protected create (labels: Labels<L>): CounterSeries<L> { return new CounterSeries(labels) }

  /** prom-client style, for cold paths: `inc({code}, 1)`. */
  inc (labels: Labels<L>, n = 1): void { this.child(labels).inc(n) }

  async get (): Promise<MetricData> {
    const values: MetricValue[] = []
    for (const c of this.children()) values.push({ labels: { ...c.labels }, value: c.value })
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator }
  }

  reset (): void { for (const c of this.children()) c.value = 0 }
}

class HistogramSeries<L extends string> implements HistogramChild {
  readonly counts: Float64Array
  sum = 0
  count = 0
  constructor (readonly labels: Labels<L>, readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length)
  }

  observe (value: number): void {
    if (!Number.isFinite(value)) throw new TypeError(`not a finite number: ${value}`)
    const b = this.bounds
    for (let i = 0; i < b.length; i++) {
      if (value <= (b[i] as number)) { (this.counts[i] as number)++; break }
    }
    this.sum += value
    this.count++
  }
}

export class HotHistogram<L extends string = never> extends HotMetric<L, HistogramSeries<L>> {
  readonly type = 'histogram' as const
  readonly #bounds: readonly number[]

  constructor (name: string, help: string, labelNames: readonly L[], buckets: readonly number[], registers: Registry[]) {
    super(name, help, labelNames, registers)
    this.#bounds = [...buckets].sort((a, b) => a - b)
  }

  protected create (labels: Labels<L>): HistogramSeries<L> { return new HistogramSeries(labels, this.#bounds) }

  /** prom-client style, for cold paths. */
  observe (labels: Labels<L>, value: number): void { this.child(labels).observe(value) }

  async get (): Promise<MetricData> {
    const values: MetricValue[] = []
    const bucket = `${this.name}_bucket`
    for (const c of this.children()) {
      let acc = 0
      for (let i = 0; i < this.#bounds.length; i++) {
        acc += c.counts[i] as number
        values.push({ labels: { ...c.labels, le: this.#bounds[i] as number }, value: acc, metricName: bucket })
      }
      values.push({ labels: { ...c.labels, le: '+Inf' }, value: c.count, metricName: bucket })
      values.push({ labels: { ...c.labels }, value: c.sum, metricName: `${this.name}_sum` })
      values.push({ labels: { ...c.labels }, value: c.count, metricName: `${this.name}_count` })
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator }
  }

  reset (): void {
    for (const c of this.children()) {
      c.counts.fill(0)
      c.sum = 0
      c.count = 0
    }
  }
}
