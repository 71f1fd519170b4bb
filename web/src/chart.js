import { html } from 'htm/preact'
import { useEffect, useRef } from 'preact/hooks'
import uPlot from 'uplot'
import { t } from './i18n.js'

/**
 * One metric over time: the API's server-side buckets as an average line inside a min–max band.
 * The element carries what it asked for and what uPlot holds (data-points), for a reader and a test.
 * @param {{ range: string, metric: string, points: Array<{t:number,min:number,avg:number,max:number}>, from: number, to: number, buckets: number }} props
 */
export function Chart ({ range, metric, points, from, to, buckets }) {
  const box = useRef(null)
  const plot = useRef(null)

  useEffect(() => {
    const el = box.current
    if (el === null || points.length === 0) return undefined
    const data = [points.map((p) => p.t / 1000), points.map((p) => p.min), points.map((p) => p.avg), points.map((p) => p.max)]
    const unit = t(`unit_${metric}`)
    const fmt = (_u, v) => v === null || v === undefined ? '–' : `${Number(v.toFixed(1))} ${unit}`
    const u = new uPlot({
      width: Math.max(280, el.clientWidth),
      height: 200,
      scales: { x: { time: true, range: [from / 1000, to / 1000] } },
      series: [
        {},
        { label: t('min_'), stroke: '#7aa6d8', width: 1, value: fmt },
        { label: t('avg'), stroke: '#0b5cad', width: 2, value: fmt },
        { label: t('max_'), stroke: '#7aa6d8', width: 1, value: fmt },
      ],
      bands: [{ series: [3, 1], fill: 'rgba(11, 92, 173, 0.12)' }],
      axes: [{}, { values: (_u, ticks) => ticks.map((v) => `${v}`) }],
    }, data, el)
    plot.current = u
    el.dataset.points = String(u.data[0].length)
    const resize = () => u.setSize({ width: Math.max(280, el.clientWidth), height: 200 })
    window.addEventListener('resize', resize)
    return () => { window.removeEventListener('resize', resize); u.destroy(); plot.current = null; delete el.dataset.points }
  }, [points, metric, from, to])

  return html`
    <figure class="chart" data-range=${range} data-metric=${metric} data-from=${from} data-to=${to} data-buckets=${buckets}>
      <figcaption>${t(metric)} <span class="muted">(${t(`unit_${metric}`)}; ${t('minAvgMax')})</span></figcaption>
      ${points.length === 0 ? html`<p class="muted" data-empty="true">${t('noData')}</p>` : null}
      <div ref=${box} class="plot" role="img" aria-label=${`${t(metric)}: ${points.length}`}></div>
    </figure>`
}
