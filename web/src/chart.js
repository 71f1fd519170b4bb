import { html } from 'htm/preact'
import { useEffect, useRef } from 'preact/hooks'
import uPlot from 'uplot'
import { t } from './i18n.js'

const HEIGHT = 200
/** Interval metrics (a count per interval) are drawn as bars of the bucket's sum, the others as an average inside a min–max band. */
export const BAR_METRICS = new Set(['steps', 'active_energy'])

/**
 * One uPlot chart. Dragging across it asks `onZoom(fromMs, toMs)` for that stretch (the page reads
 * it again, in finer buckets); the page's buttons do the same from the keyboard.
 */
function usePlot (box, make, deps, onZoom) {
  useEffect(() => {
    const el = box.current
    if (el === null) return undefined
    const spec = make()
    if (spec === null) return undefined
    const u = new uPlot({
      width: Math.max(280, el.clientWidth),
      height: HEIGHT,
      cursor: { drag: { x: true, y: false, setScale: false } },
      hooks: {
        setSelect: [(p) => {
          if (p.select.width < 4 || onZoom === undefined) return
          const a = p.posToVal(p.select.left, 'x')
          const b = p.posToVal(p.select.left + p.select.width, 'x')
          p.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false)
          onZoom(Math.round(a * 1000), Math.round(b * 1000))
        }],
      },
      ...spec.opts,
    }, spec.data, el)
    el.dataset.points = String(spec.count ?? u.data[0].length)
    const resize = () => u.setSize({ width: Math.max(280, el.clientWidth), height: HEIGHT })
    window.addEventListener('resize', resize)
    return () => { window.removeEventListener('resize', resize); u.destroy(); delete el.dataset.points }
  }, deps)
}

/**
 * One metric over time from the API's buckets: an average line inside a min–max band, or bars of
 * the bucket's sum for a count (steps, energy). The element carries what it asked for and what
 * uPlot holds (data-points), for a reader and a test.
 * @param {{ range: string, metric: string, points: Array<{t:number,min:number,avg:number,max:number,sum:number}>, from: number, to: number, buckets: number, onZoom?: (a:number,b:number)=>void }} props
 */
export function Chart ({ range, metric, points, from, to, buckets, onZoom }) {
  const box = useRef(null)
  const bars = BAR_METRICS.has(metric)
  usePlot(box, () => {
    if (points.length === 0) return null
    const unit = t(`unit_${metric}`)
    const fmt = (_u, v) => v === null || v === undefined ? '–' : `${Number(v.toFixed(1))} ${unit}`
    const x = points.map((p) => p.t / 1000)
    const scales = { x: { time: true, range: [from / 1000, to / 1000] } }
    if (bars) {
      return {
        data: [x, points.map((p) => p.sum)],
        opts: {
          scales: { ...scales, y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
          series: [{}, { label: t('sumPer'), stroke: '#0b5cad', fill: 'rgba(11, 92, 173, 0.45)', width: 1, value: fmt, paths: uPlot.paths.bars({ size: [0.9, 40] }), points: { show: false } }],
        },
      }
    }
    return {
      data: [x, points.map((p) => p.min), points.map((p) => p.avg), points.map((p) => p.max)],
      opts: {
        scales,
        series: [
          {},
          { label: t('min_'), stroke: '#7aa6d8', width: 1, value: fmt },
          { label: t('avg'), stroke: '#0b5cad', width: 2, value: fmt },
          { label: t('max_'), stroke: '#7aa6d8', width: 1, value: fmt },
        ],
        bands: [{ series: [3, 1], fill: 'rgba(11, 92, 173, 0.12)' }],
      },
    }
  }, [points, metric, from, to], onZoom)

  return html`
    <figure class="chart" data-range=${range} data-metric=${metric} data-kind=${bars ? 'bars' : 'band'} data-from=${from} data-to=${to} data-buckets=${buckets}>
      <figcaption>${t(metric)} <span class="muted">(${t(`unit_${metric}`)}; ${bars ? t('sumPerInterval') : t('minAvgMax')})</span></figcaption>
      ${points.length === 0 ? html`<p class="muted" data-empty="true">${t('noData')}</p>` : null}
      <div ref=${box} class="plot" role="img" aria-label=${`${t(metric)}: ${points.length}`}></div>
    </figure>`
}

/** Hypnogram levels, top to bottom: awake, REM, light, deep (stored stage numbers 1 awake, 2 light, 3 deep, 4 REM). */
const LEVEL = { 1: 3, 4: 2, 2: 1, 3: 0 }
const LEVEL_NAME = ['sleep_deep', 'sleep_light', 'sleep_rem', 'sleep_awake']

/** Sleep stages as a hypnogram: each run of one stage a step at its level, gaps (no epochs) left open. */
export function Hypnogram ({ range, runs, from, to, onZoom }) {
  const box = useRef(null)
  usePlot(box, () => {
    if (runs.length === 0) return null
    const x = []
    const y = []
    runs.forEach((r, i) => {
      x.push(r.from / 1000); y.push(LEVEL[r.stage] ?? null)
      const next = runs[i + 1]
      if (next === undefined || next.from - r.to > 1000) { x.push(r.to / 1000); y.push(LEVEL[r.stage] ?? null); x.push(r.to / 1000 + 0.001); y.push(null) }
    })
    return {
      count: runs.length,
      data: [x, y],
      opts: {
        scales: { x: { time: true, range: [from / 1000, to / 1000] }, y: { range: [-0.5, 3.5] } },
        series: [{}, { label: t('sleepStage'), stroke: '#5b3fa8', width: 2, paths: uPlot.paths.stepped({ align: 1 }), value: (_u, v) => v === null || v === undefined ? '–' : t(LEVEL_NAME[v]), points: { show: false } }],
        axes: [{}, { splits: () => [0, 1, 2, 3], values: (_u, ticks) => ticks.map((v) => t(LEVEL_NAME[v]) ?? ''), size: 70 }],
      },
    }
  }, [runs, from, to], onZoom)
  return html`
    <figure class="chart" data-range=${range} data-kind="hypnogram" data-runs=${runs.length}>
      <figcaption>${t('sleepStages')} <span class="muted">(${t('hypnogram')})</span></figcaption>
      ${runs.length === 0 ? html`<p class="muted" data-empty="true">${t('noData')}</p>` : null}
      <div ref=${box} class="plot" role="img" aria-label=${`${t('sleepStages')}: ${runs.length}`}></div>
    </figure>`
}

/** Spot measurements over time as points (one series per value, e.g. systolic and diastolic). */
export function Trend ({ title, unit, columns, rows, from, to }) {
  const box = useRef(null)
  const have = rows.filter((r) => columns.some((c) => r[c] !== null && r[c] !== undefined))
  usePlot(box, () => {
    if (have.length === 0) return null
    const colours = ['#b00020', '#0b5cad', '#1d6b36']
    // from a little before the first measurement: a few in the last days are not squeezed into the 30-day axis's right edge
    const first = Number(have[0].at)
    const start = Math.max(from, first - Math.max(6 * 3_600_000, (to - first) * 0.05))
    return {
      data: [have.map((r) => Number(r.at) / 1000), ...columns.map((c) => have.map((r) => r[c] ?? null))],
      opts: {
        scales: { x: { time: true, range: [start / 1000, to / 1000] } },
        series: [{}, ...columns.map((c, i) => ({ label: t(`spot_${c}`), stroke: colours[i % colours.length], width: 1, points: { show: true, size: 7, fill: colours[i % colours.length] }, value: (_u, v) => v === null || v === undefined ? '–' : `${v} ${unit}` }))],
      },
    }
  }, [rows, from, to])
  if (have.length === 0) return null
  return html`
    <figure class="chart" data-kind="trend" data-trend=${columns.join(',')}>
      <figcaption>${title} <span class="muted">(${unit})</span></figcaption>
      <div ref=${box} class="plot" role="img" aria-label=${`${title}: ${have.length}`}></div>
    </figure>`
}
