/**
 * Loaded with `--import` into a node under test: shifts the JavaScript wall
 * clock (Date.now, new Date()) by VF_TEST_CLOCK_OFFSET_MS, as a clock stepped
 * by NTP or set wrong by hand would; the monotonic clock (performance.now,
 * timers) runs on. ClickHouse's own clock is not shifted: the node stamps
 * every row itself. (libfaketime, which shifts the whole process, made chDB's
 * background threads crash at exit: it interposes pthread_cond_timedwait.)
 */
const offset = Number(process.env['VF_TEST_CLOCK_OFFSET_MS'] ?? '0')
if (Number.isFinite(offset) && offset !== 0) {
  const RealDate = Date
  const realNow = RealDate.now.bind(RealDate)
  class ShiftedDate extends RealDate {
    constructor (...args: ConstructorParameters<DateConstructor> | []) {
      if (args.length === 0) super(realNow() + offset)
      else super(...(args))
    }

    static override now (): number { return realNow() + offset }
  }
  globalThis.Date = ShiftedDate as DateConstructor
}
export {}
