// UI strings in Dutch and English. The language is kept in localStorage ("vf.lang"): a
// preference of this browser, no personal data.
const STRINGS = {
  en: {
    app: 'vitalflow care', language: 'Nederlands', languageLabel: 'Switch to Dutch',
    tenant: 'Organisation (tenant)', user: 'User name', password: 'Password', logIn: 'Log in', loggingIn: 'Logging in…', logOut: 'Log out',
    loginTitle: 'Log in', sessionEnded: 'Your session ended. Log in again to return to the page you were on.',
    ING_ERR_AUTH: 'Wrong tenant, user or password.', ING_ERR_LOCKED: 'Account locked after repeated failures. Try again in {0}.',
    ING_ERR_AUTH_BACKOFF: 'Too many failed log-ins from this address. Try again in {0}.', ING_ERR_AUTH_BUSY: 'Too many log-ins at once from this address. Try again in {0}.',
    ING_ERR_HASHER_BUSY: 'Too many log-ins at once. Retry shortly.', ING_ERR_INVALID: 'Fill in every field.', network: 'The node cannot be reached.', failed: 'Something went wrong ({0}).',
    patients: 'Patients', alarms: 'Alarms', filter: 'Filter by id or name', patient: 'Patient', openAlarms: 'Open alarms', noPatients: 'No patients match.',
    heart_rate: 'Heart rate', spo2: 'SpO₂', respiration_rate: 'Respiration', skin_temperature: 'Skin temperature', hrv_rmssd: 'HRV (RMSSD)',
    ago: '{0} ago', now: 'just now', sec: '{0} s', min: '{0} min', hour: '{0} h', day: '{0} d', loading: 'Loading…',
    notFound: 'Patient not found.', notFoundHint: 'There is no patient with this id in your organisation.', back: 'Back to the list',
    range: 'Range', lastHour: 'Last hour', last24h: '24 hours', last7d: '7 days', noData: 'No data in this range.', latest: 'Latest',
    minAvgMax: 'min / average / max per interval', avg: 'average', min_: 'min', max_: 'max',
    localName: 'Name on this device only', saveName: 'Save name', nameHint: 'Stored in this browser only; never sent to the server.',
    alarmBoard: 'Alarm board', live: 'Live', offline: 'Reconnecting…', time: 'Time', kind: 'Kind', device: 'Device', status: 'Status',
    button_press: 'Button pressed', fall_detected: 'Fall detected', acknowledge: 'Acknowledge', stale: 'stale', acknowledgedBy: 'Acknowledged by {0}',
    newAlarms: '{0} new alarm(s)!', dismiss: 'Seen', noAlarms: 'No alarms in the last 24 hours.', unit_heart_rate: 'bpm', unit_spo2: '%',
    unit_respiration_rate: '/min', unit_skin_temperature: '°C', unit_hrv_rmssd: 'ms', sortBy: 'Sort by {0}', forbidden: 'Your role may not read this.', refresh: 'Refresh',
    // clinician and responder screens (issue 16)
    show: 'Show', filter_all: 'All patients', filter_lowSpo2: 'SpO₂ below 92 % in the last hour', filter_silent6h: 'No data for 6 hours', filter_openAlarms: 'With open alarms',
    filter_lowBattery: 'Battery below 20 %', battery: 'Battery', lastSeen: 'Last seen', shownOf: '{0} of {1} patients', readAgo: 'read {0}',
    last30d: '30 days', zoomPan: 'Zoom and pan', earlier: 'Earlier', later: 'Later', zoomIn: 'Zoom in', zoomOut: 'Zoom out', dragToZoom: 'drag across a chart to zoom',
    steps: 'Steps', active_energy: 'Active energy', barometric_altitude: 'Barometric altitude', unit_steps: 'steps', unit_active_energy: 'kcal', unit_barometric_altitude: 'm',
    sumPer: 'total', sumPerInterval: 'total per interval', sleepStages: 'Sleep stages', hypnogram: 'hypnogram', sleepStage: 'stage',
    sleep_awake: 'Awake', sleep_rem: 'REM', sleep_light: 'Light', sleep_deep: 'Deep',
    spotMeasurements: 'Spot measurements', bloodPressure: 'Blood pressure', spot_systolic: 'Systolic', spot_diastolic: 'Diastolic', spot_pulse: 'Pulse', spot_spo2: 'SpO₂',
    spot_temperature: 'Temperature', spot_glucose: 'Glucose', spot_weight: 'Weight', alarmHistory: 'Alarm history', open: 'Open',
    devicesOverTime: 'Devices bound over time', family: 'Kind', boundFrom: 'From', boundTo: 'Until', boundNow: 'now', fromEnrolment: 'enrolment',
    family_bracelet: 'Bracelet', family_cvitals: 'cVitals kit', family_calarm: 'Personal alarm', family_gateway: 'Gateway phone', family_responder: 'Responder',
    soundOn: 'Sound on', soundOff: 'Sound off (muted)', disconnected: 'Connection to the node lost. Reconnecting… Alarms that arrive meanwhile are shown as soon as the connection is back.',
  },
  nl: {
    app: 'vitalflow zorg', language: 'English', languageLabel: 'Naar Engels',
    tenant: 'Organisatie (tenant)', user: 'Gebruikersnaam', password: 'Wachtwoord', logIn: 'Inloggen', loggingIn: 'Bezig met inloggen…', logOut: 'Uitloggen',
    loginTitle: 'Inloggen', sessionEnded: 'Je sessie is verlopen. Log opnieuw in om terug te gaan naar de pagina waar je was.',
    ING_ERR_AUTH: 'Onjuiste tenant, gebruiker of wachtwoord.', ING_ERR_LOCKED: 'Account geblokkeerd na herhaalde mislukte pogingen. Probeer het over {0} opnieuw.',
    ING_ERR_AUTH_BACKOFF: 'Te veel mislukte inlogpogingen vanaf dit adres. Probeer het over {0} opnieuw.', ING_ERR_AUTH_BUSY: 'Te veel gelijktijdige inlogpogingen vanaf dit adres. Probeer het over {0} opnieuw.',
    ING_ERR_HASHER_BUSY: 'Te veel inlogpogingen tegelijk. Probeer het zo opnieuw.', ING_ERR_INVALID: 'Vul alle velden in.', network: 'De node is niet bereikbaar.', failed: 'Er ging iets mis ({0}).',
    patients: 'Patiënten', alarms: 'Alarmen', filter: 'Filter op id of naam', patient: 'Patiënt', openAlarms: 'Open alarmen', noPatients: 'Geen patiënten gevonden.',
    heart_rate: 'Hartslag', spo2: 'SpO₂', respiration_rate: 'Ademhaling', skin_temperature: 'Huidtemperatuur', hrv_rmssd: 'HRV (RMSSD)',
    ago: '{0} geleden', now: 'zojuist', sec: '{0} s', min: '{0} min', hour: '{0} u', day: '{0} d', loading: 'Laden…',
    notFound: 'Patiënt niet gevonden.', notFoundHint: 'Er is geen patiënt met dit id in jouw organisatie.', back: 'Terug naar de lijst',
    range: 'Periode', lastHour: 'Laatste uur', last24h: '24 uur', last7d: '7 dagen', noData: 'Geen gegevens in deze periode.', latest: 'Laatste',
    minAvgMax: 'min / gemiddelde / max per interval', avg: 'gemiddeld', min_: 'min', max_: 'max',
    localName: 'Naam, alleen op dit apparaat', saveName: 'Naam bewaren', nameHint: 'Alleen in deze browser bewaard; nooit naar de server gestuurd.',
    alarmBoard: 'Alarmbord', live: 'Live', offline: 'Opnieuw verbinden…', time: 'Tijd', kind: 'Soort', device: 'Apparaat', status: 'Status',
    button_press: 'Knop ingedrukt', fall_detected: 'Val gedetecteerd', acknowledge: 'Bevestigen', stale: 'verlopen', acknowledgedBy: 'Bevestigd door {0}',
    newAlarms: '{0} nieuw(e) alarm(en)!', dismiss: 'Gezien', noAlarms: 'Geen alarmen in de afgelopen 24 uur.', unit_heart_rate: 'bpm', unit_spo2: '%',
    unit_respiration_rate: '/min', unit_skin_temperature: '°C', unit_hrv_rmssd: 'ms', sortBy: 'Sorteer op {0}', forbidden: 'Jouw rol mag dit niet lezen.', refresh: 'Vernieuwen',
    // zorgverlener- en meldkamerschermen (issue 16)
    show: 'Toon', filter_all: 'Alle patiënten', filter_lowSpo2: 'SpO₂ onder 92 % in het laatste uur', filter_silent6h: 'Geen gegevens sinds 6 uur', filter_openAlarms: 'Met open alarmen',
    filter_lowBattery: 'Batterij onder 20 %', battery: 'Batterij', lastSeen: 'Laatst gezien', shownOf: '{0} van {1} patiënten', readAgo: '{0} gelezen',
    last30d: '30 dagen', zoomPan: 'Zoomen en schuiven', earlier: 'Eerder', later: 'Later', zoomIn: 'Inzoomen', zoomOut: 'Uitzoomen', dragToZoom: 'sleep over een grafiek om te zoomen',
    steps: 'Stappen', active_energy: 'Actieve energie', barometric_altitude: 'Barometrische hoogte', unit_steps: 'stappen', unit_active_energy: 'kcal', unit_barometric_altitude: 'm',
    sumPer: 'totaal', sumPerInterval: 'totaal per interval', sleepStages: 'Slaapfasen', hypnogram: 'hypnogram', sleepStage: 'fase',
    sleep_awake: 'Wakker', sleep_rem: 'REM', sleep_light: 'Licht', sleep_deep: 'Diep',
    spotMeasurements: 'Puntmetingen', bloodPressure: 'Bloeddruk', spot_systolic: 'Systolisch', spot_diastolic: 'Diastolisch', spot_pulse: 'Pols', spot_spo2: 'SpO₂',
    spot_temperature: 'Temperatuur', spot_glucose: 'Glucose', spot_weight: 'Gewicht', alarmHistory: 'Alarmgeschiedenis', open: 'Open',
    devicesOverTime: 'Gekoppelde apparaten door de tijd', family: 'Soort', boundFrom: 'Vanaf', boundTo: 'Tot', boundNow: 'nu', fromEnrolment: 'aanmelding',
    family_bracelet: 'Armband', family_cvitals: 'cVitals-set', family_calarm: 'Persoonlijk alarm', family_gateway: 'Gateway-telefoon', family_responder: 'Meldkamer',
    soundOn: 'Geluid aan', soundOff: 'Geluid uit (gedempt)', disconnected: 'Verbinding met de node verbroken. Opnieuw verbinden… Alarmen die intussen binnenkomen worden getoond zodra de verbinding terug is.',
  },
}

const KEY = 'vf.lang'
let lang = localStorage.getItem(KEY) === 'nl' ? 'nl' : 'en'
document.documentElement.lang = lang

export function language () { return lang }

/** @param {'en'|'nl'} l */
export function setLanguage (l) {
  lang = l
  localStorage.setItem(KEY, l)
  document.documentElement.lang = l
}

/** The string `key` in the current language, `{0}`, `{1}` replaced by the arguments; the key itself when unknown. */
export function t (key, ...args) {
  const s = STRINGS[lang][key] ?? STRINGS.en[key] ?? key
  return s.replace(/\{(\d)\}/g, (_, i) => String(args[Number(i)] ?? ''))
}

/** Adds a screen's own strings (kept in its own file) to both languages. */
export function addStrings (en, nl) {
  Object.assign(STRINGS.en, en)
  Object.assign(STRINGS.nl, nl)
}

export function has (key) { return key in STRINGS.en }

/** "3 min" / "2 h": how old a time (ms) is. */
export function age (atMs, now = Date.now()) {
  const s = Math.max(0, Math.round((now - atMs) / 1000))
  if (s < 10) return t('now')
  if (s < 60) return t('ago', t('sec', s))
  if (s < 3600) return t('ago', t('min', Math.floor(s / 60)))
  if (s < 86_400) return t('ago', t('hour', Math.floor(s / 3600)))
  return t('ago', t('day', Math.floor(s / 86_400)))
}

/** A duration in seconds as words ("5 min"). */
export function wait (seconds) {
  const s = Math.max(1, Math.ceil(seconds))
  return s < 120 ? t('sec', s) : t('min', Math.ceil(s / 60))
}

export function clock (ms) {
  return new Date(ms).toLocaleString(lang === 'nl' ? 'nl-NL' : 'en-GB', { dateStyle: 'short', timeStyle: 'medium' })
}
