// The alarm board's beep: WebAudio, generated here (no audio file, nothing fetched). Muting is a
// preference of this browser (localStorage "vf.mute"), no personal data. A browser lets a page
// sound only after the user has interacted with it; the log-in click is such an interaction.
const KEY = 'vf.mute'
let ctx = null
let played = 0

export function muted () { return localStorage.getItem(KEY) === '1' }
export function setMuted (m) { localStorage.setItem(KEY, m ? '1' : '0') }
/** How many beeps actually started (the audio context was running): for the page's own test hook. */
export function beeps () { return played }

/** Two short tones, 880 Hz then 660 Hz; nothing when muted or when the browser does not let the page sound yet. */
export async function beep () {
  if (muted()) return false
  try {
    ctx ??= new AudioContext()
    if (ctx.state !== 'running') await ctx.resume()
    if (ctx.state !== 'running') return false
    const t0 = ctx.currentTime
    for (const [i, f] of [[0, 880], [1, 660]]) {
      const osc = ctx.createOscillator()
      const gain = ctx.createGain()
      osc.type = 'square'
      osc.frequency.value = f
      gain.gain.setValueAtTime(0.0001, t0 + i * 0.22)
      gain.gain.exponentialRampToValueAtTime(0.25, t0 + i * 0.22 + 0.02)
      gain.gain.exponentialRampToValueAtTime(0.0001, t0 + i * 0.22 + 0.2)
      osc.connect(gain).connect(ctx.destination)
      osc.start(t0 + i * 0.22)
      osc.stop(t0 + i * 0.22 + 0.21)
    }
    played++
    return true
  } catch { return false }
}
