// Hive dashboard: the whole deployment, live. No framework and no build
// step. The page arrives with the state in it (#hive-state, the body of
// /api/state), which this script draws before the browser's load event, so
// the first paint shows every model; then it follows /api/events
// (server-sent events) from the last event the state had, and opens a new
// stream whenever the browser gives one up. Rows are created once per node
// and model and then updated in place (keyed), and the page renders at most
// four times a second however fast events come.
'use strict';
(() => {
  const $ = (id) => document.getElementById(id);
  const SVG = 'http://www.w3.org/2000/svg';
  const RENDER_EVERY = 250; // ms: at most 4 renders a second
  const STAT_SPAN = 60000;  // ms: request rate and success rate over the last minute
  const MAX_EVENTS = 100;
  const TOKEN_KEY = 'hive.operatorToken';
  const ACTIONS = [
    ['breaker_open', 'Open', 'Force open the breaker of', 'danger'],
    ['breaker_close', 'Close', 'Close the breaker of', ''],
    ['breaker_reset', 'Reset', 'Reset the breaker of', ''],
    ['model_disable', 'Disable', 'Take out of rotation', 'danger'],
    ['model_enable', 'Enable', 'Put back into rotation', ''],
  ];

  const st = {
    meta: { node: '', adminEnabled: false, intervalMs: 2000, windowMs: 600000 },
    ref: 0,               // server time (ms) of the latest sample: the charts' "now"
    sampleError: '',
    nodes: new Map(),     // name -> node view
    rows: new Map(),      // "node/model" -> row view
    alerts: new Map(),    // alert id -> {alert, node, recv}
    alertsDirty: true,
    newEvents: [],        // events not yet shown, oldest first
    stream: '', lastSeq: 0,
    connected: false, everConnected: false, lastMessage: 0,
    reopenMs: 0,          // the wait before opening a stream again; grows while the node does not answer
  };

  // ---------- formatting ----------
  const num = (v) => (v === undefined || v === null || v === '' ? 0 : Number(v));
  const ms = (ts) => (ts ? Date.parse(ts) : 0);
  function fmtDur(d) {
    if (!(d >= 0)) return '';
    const s = Math.floor(d / 1000);
    if (s < 60) return s + 's';
    const m = Math.floor(s / 60);
    if (m < 60) return m + 'm ' + String(s % 60).padStart(2, '0') + 's';
    const h = Math.floor(m / 60);
    if (h < 48) return h + 'h ' + String(m % 60).padStart(2, '0') + 'm';
    return Math.floor(h / 24) + 'd ' + (h % 24) + 'h';
  }
  function fmtMs(v) {
    if (!(v > 0)) return '–';
    return fmtNum(v);
  }
  // fmtPair formats two latencies in one unit: ms, or s from 10 s up, so
  // that neither takes more than four digits.
  function fmtPair(a, b) {
    if (Math.max(a, b) < 10000) return [fmtMs(a), fmtMs(b), 'ms'];
    const s = (v) => (v > 0 ? (v / 1000).toFixed(v >= 100000 ? 0 : 1) : '–');
    return [s(a), s(b), 's'];
  }
  // fmtNum shows three significant digits, all the digits from 100 up
  // (99.99 is "100", not "100.0").
  function fmtNum(v) {
    return v >= 99.95 ? Math.round(v).toString() : v >= 9.995 ? v.toFixed(1) : v.toFixed(2);
  }
  const label = (s) => String(s || '').replace(/_/g, ' ');
  const clock = (t) => { const d = new Date(t); return [d.getHours(), d.getMinutes(), d.getSeconds()].map((v) => String(v).padStart(2, '0')).join(':'); };

  // adminOff is why the buttons are off, or '' when they are on.
  function adminOff() {
    return st.meta.adminEnabled ? '' : 'Admin actions are off: node ' + st.meta.node +
      ' was started without an operator token (HIVE_ADMIN_TOKEN)';
  }
  // setAdmin turns an action button off, with the reason as its tooltip,
  // when the node has no operator token: it would only be refused.
  function setAdmin(b) {
    const off = adminOff();
    if (b.disabled !== !!off) b.disabled = !!off;
    if (off) b.title = off; else b.removeAttribute('title');
  }

  // setText changes a node's text only when it differs: no layout work
  // for rows that did not change.
  function setText(el, text) {
    if (el.textContent !== text) el.textContent = text;
  }
  function setClass(el, cls) {
    if (el.className !== cls) el.className = cls;
  }
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // ---------- views ----------
  function nodeView(name) {
    let n = st.nodes.get(name);
    if (n) return n;
    const section = $('node-template').content.firstElementChild.cloneNode(true);
    section.dataset.node = name;
    section.setAttribute('aria-label', 'node ' + name);
    n = {
      name, status: null, seen: 0, dirty: true, section,
      nameEl: section.querySelector('.node-name'), metaEl: section.querySelector('.node-meta'),
      tbody: section.querySelector('tbody'),
    };
    setText(n.nameEl, 'node ' + name);
    // Keep the sections in name order.
    const after = [...st.nodes.keys()].filter((k) => k > name).sort()[0];
    $('nodes').insertBefore(section, after ? st.nodes.get(after).section : null);
    st.nodes.set(name, n);
    return n;
  }

  // chart is a sparkline with its scale: the value of its top edge.
  function chart(kind, lines) {
    const box = el('span', 'chart-box');
    const svg = document.createElementNS(SVG, 'svg');
    svg.setAttribute('class', 'chart');
    svg.setAttribute('viewBox', '0 0 120 28');
    svg.setAttribute('preserveAspectRatio', 'none');
    svg.setAttribute('role', 'img');
    const title = document.createElementNS(SVG, 'title');
    svg.appendChild(title);
    const paths = {};
    for (const l of lines) {
      const p = document.createElementNS(SVG, 'path');
      p.setAttribute('class', l);
      svg.appendChild(p);
      paths[l] = p;
    }
    const scale = el('span', 'scale');
    scale.setAttribute('aria-hidden', 'true'); // the label says it all
    box.append(svg, scale);
    return { box, svg, title, paths, scale, kind };
  }

  // Each cell has two lines: the value, and what qualifies it.
  function twoLines(td, first, second) {
    const a = el('div', 'l1');
    const b = el('div', 'l2');
    a.append(...first);
    b.append(...second);
    td.append(a, b);
  }

  function rowView(node, model) {
    const key = node + '/' + model;
    let r = st.rows.get(key);
    if (r) return r;
    const n = nodeView(node);
    const tr = el('tr');
    tr.dataset.key = key;
    const cell = (cls) => { const td = el('td', cls); tr.appendChild(td); return td; };
    const tdModel = cell('model');
    const provider = el('span', 'provider');
    twoLines(tdModel, [el('span', 'name', model)], [provider]);
    tdModel.title = model + ' on ' + node;
    const badge = el('span', 'badge');
    badge.dataset.testid = 'breaker-' + node + '-' + model;
    const since = el('span', 'since');
    twoLines(cell(''), [badge], [since]);
    const health = el('span', 'badge');
    health.dataset.testid = 'health-' + node + '-' + model;
    const ramp = el('span', 'ramp');
    twoLines(cell(''), [health], [ramp]);
    const bulkText = el('span');
    const queued = el('span', 'queued');
    const bar = el('span', 'bar');
    const barFill = el('span');
    bar.appendChild(barFill);
    twoLines(cell('bulk'), [bulkText], [bar, queued]);
    const p50 = el('span');
    const p99 = el('span');
    const latChart = chart('latency', ['p99', 'p50']);
    const lat = el('div', 'm');
    cell('metric').append(lat);
    lat.append(el('div', 'vals'), latChart.box);
    twoLines(lat.firstChild, [p50], [p99]);
    const rps = el('span');
    const success = el('span');
    const trafficChart = chart('traffic', ['req', 'fail']);
    const traffic = el('div', 'm');
    cell('metric').append(traffic);
    traffic.append(el('div', 'vals'), trafficChart.box);
    twoLines(traffic.firstChild, [rps], [success]);
    const actions = el('div', 'actions');
    actions.setAttribute('role', 'group');
    actions.setAttribute('aria-label', 'actions for ' + model + ' on ' + node);
    for (const [cmd, text, what, cls] of ACTIONS) {
      const b = el('button', cls, text);
      b.type = 'button';
      b.dataset.cmd = cmd;
      b.dataset.node = node;
      b.dataset.model = model;
      b.dataset.testid = cmd + '-' + node + '-' + model;
      b.setAttribute('aria-label', what + ' ' + model + ' on ' + node);
      setAdmin(b);
      actions.appendChild(b);
    }
    cell('').append(actions);
    n.tbody.appendChild(tr);
    r = {
      key, node, model, data: null, points: [],
      breaker: 'closed', breakerSince: 0, breakerRecv: 0, origin: '', adopted: false,
      health: 'unknown', healthRecv: 0, rampRecv: 0, sampledAt: 0,
      dirty: true, chartDirty: true,
      tr, provider, badge, since, healthEl: health, ramp, rampPct: 100, bulkText, bar, barFill, queued,
      rps, success, p50, p99, latChart, trafficChart,
    };
    st.rows.set(key, r);
    return r;
  }

  // ---------- state ----------
  // applyState takes a whole state: the page's own, or /api/state after a
  // stream came back, whose history then fills the charts' gap.
  function applyState(s) {
    st.meta = { node: s.node, adminEnabled: s.adminEnabled, intervalMs: s.intervalMs, windowMs: s.windowMs };
    const note = $('admin-note');
    note.hidden = s.adminEnabled;
    if (!s.adminEnabled) {
      note.textContent = 'Admin actions are off on node ' + s.node +
        ': it was started without an operator token (HIVE_ADMIN_TOKEN), so the buttons are off.';
    }
    for (const b of document.querySelectorAll('button[data-cmd]')) setAdmin(b);
    applySample(s);
    for (const [key, pts] of Object.entries(s.history || {})) {
      const r = st.rows.get(key);
      if (r) { r.points = mergePoints(r.points, pts || []); r.chartDirty = true; r.dirty = true; }
    }
    for (const ev of s.events || []) applyEvent(ev);
    const [stream, seq] = splitID(s.lastEventId);
    if (stream && stream !== st.stream) { st.stream = stream; st.lastSeq = 0; }
    if (stream) st.lastSeq = Math.max(st.lastSeq, seq);
    schedule();
  }

  // mergePoints joins two series of points (oldest first) by time.
  function mergePoints(a, b) {
    const byTime = new Map();
    for (const p of a) byTime.set(p[0], p);
    for (const p of b) byTime.set(p[0], p);
    return [...byTime.values()].sort((x, y) => x[0] - y[0]);
  }

  // splitID reads an event id, "<stream>-<seq>".
  function splitID(id) {
    const i = String(id || '').lastIndexOf('-');
    return i < 0 ? ['', 0] : [id.slice(0, i), Number(id.slice(i + 1)) || 0];
  }

  function applySample(s) {
    const at = s.sampledAt;
    st.ref = Math.max(st.ref, at);
    st.sampleError = s.error || '';
    st.lastMessage = Date.now();
    const answered = new Set();
    const live = new Set();
    for (const ns of s.nodes || []) {
      const n = nodeView(ns.node);
      n.status = ns;
      n.seen = (s.seen || {})[ns.node] || 0;
      n.dirty = true;
      live.add(ns.node);
      if (n.seen >= at) answered.add(ns.node);
      const models = new Set();
      for (const m of ns.models || []) {
        const r = rowView(ns.node, m.name);
        models.add(r.key);
        if (n.seen < at) continue; // an old answer: keep what events told us
        r.data = m;
        r.sampledAt = at;
        // An event received after this sample went out is newer than it.
        if (at > r.breakerRecv) {
          r.breaker = m.breaker; r.breakerSince = ms(m.breakerSince);
          r.origin = m.breakerOrigin || ''; r.adopted = !!m.breakerAdopted;
        }
        if (at > r.healthRecv) r.health = m.health;
        if (at > r.rampRecv) r.rampPct = m.rampPercent;
        r.dirty = true;
      }
      // Models gone from a node's configuration.
      for (const [key, r] of st.rows) {
        if (r.node === ns.node && !models.has(key)) { r.tr.remove(); st.rows.delete(key); }
      }
    }
    for (const [name, n] of st.nodes) { // nodes silent for the whole window
      if (!live.has(name)) {
        n.section.remove();
        st.nodes.delete(name);
        for (const [key, r] of st.rows) if (r.node === name) st.rows.delete(key);
      }
    }
    for (const [key, p] of Object.entries(s.points || {})) {
      const r = st.rows.get(key);
      if (!r) continue;
      const last = r.points[r.points.length - 1];
      if (!last || p[0] > last[0]) r.points.push(p);
      const oldest = st.ref - st.meta.windowMs;
      let i = 0;
      while (i < r.points.length && r.points[i][0] < oldest) i++;
      if (i > 0) r.points.splice(0, i);
      r.chartDirty = true;
      r.dirty = true;
    }
    // Alerts: the answering nodes' lists are the truth, unless an event came after.
    const listed = new Set();
    for (const ns of s.nodes || []) {
      if (!answered.has(ns.node)) continue;
      for (const a of ns.alerts || []) {
        listed.add(a.id);
        const cur = st.alerts.get(a.id);
        if (!cur || cur.recv < at) st.alerts.set(a.id, { alert: a, node: a.node || ns.node, recv: at });
      }
    }
    for (const [id, a] of st.alerts) {
      if (!listed.has(id) && answered.has(a.node) && a.recv < at) st.alerts.delete(id);
    }
    st.alertsDirty = true;
    schedule();
  }

  function applyEvent(ev) {
    if (ev.stream !== st.stream) { st.stream = ev.stream; st.lastSeq = 0; }
    if (ev.id <= st.lastSeq) return; // seen before a reconnect
    st.lastSeq = ev.id;
    st.lastMessage = Date.now();
    st.newEvents.push(ev);
    if (st.newEvents.length > MAX_EVENTS) st.newEvents.splice(0, st.newEvents.length - MAX_EVENTS);
    const e = ev.event || {};
    const r = st.rows.get(ev.node + '/' + ev.model);
    const newer = r && ev.received >= r.sampledAt;
    switch (ev.kind) {
      case 'breaker':
        if (newer && e.to) {
          r.breaker = e.to; r.breakerSince = ms(e.time); r.breakerRecv = ev.received; r.dirty = true;
          // Who opened it: a peer (adopted, reason peer) or this node.
          r.adopted = e.reason === 'peer';
          r.origin = e.to === 'closed' ? '' : (e.origin || ev.node);
        }
        break;
      case 'health':
        if (newer && e.to) { r.health = e.to; r.healthRecv = ev.received; r.dirty = true; }
        break;
      case 'recovery':
        if (newer && e.kind === 'ramp_step') { r.rampPct = e.rampPercent; r.rampRecv = ev.received; r.dirty = true; }
        break;
      case 'alert': {
        if (!e.id) break;
        const cur = st.alerts.get(e.id);
        if (cur && cur.recv > ev.received) break;
        if (e.state === 'resolved') st.alerts.delete(e.id);
        else st.alerts.set(e.id, { alert: e, node: e.node || ev.node, recv: ev.received });
        st.alertsDirty = true;
        break;
      }
    }
    schedule();
  }

  // ---------- rendering ----------
  let timer = 0;
  let lastRender = 0;
  function schedule() {
    if (timer) return;
    timer = setTimeout(render, Math.max(0, RENDER_EVERY - (performance.now() - lastRender)));
  }

  // render updates what changed. Each run is a performance measure named
  // "hive-render", so its cost shows in the browser's tools (and tests).
  function render() {
    timer = 0;
    lastRender = performance.now();
    performance.mark('hive-render-start');
    for (const n of st.nodes.values()) if (n.dirty) renderNode(n);
    for (const r of st.rows.values()) {
      if (r.dirty) renderRow(r);
      if (r.chartDirty) renderCharts(r);
    }
    if (st.alertsDirty) renderAlerts();
    if (st.newEvents.length) renderEvents();
    renderSummary();
    performance.measure('hive-render', 'hive-render-start');
    performance.clearMarks('hive-render-start');
    if (performance.getEntriesByName('hive-render').length > 500) performance.clearMeasures('hive-render');
  }

  function renderNode(n) {
    n.dirty = false;
    const s = n.status || {};
    const parts = [];
    if (s.version) parts.push('v' + s.version);
    if (s.started) parts.push('up ' + fmtDur(st.ref - ms(s.started)));
    parts.push('persistence ' + (s.persistence ? 'on' : 'off'));
    if (s.draining) parts.push('DRAINING');
    const silent = st.ref - n.seen;
    const stale = n.seen && silent > 3 * st.meta.intervalMs;
    if (stale) parts.push('not answering for ' + fmtDur(silent));
    setText(n.metaEl, parts.join(' · '));
    n.section.classList.toggle('stale', !!stale);
  }

  // shown applies the filter and "only problems".
  function shown(r) {
    const f = $('filter').value.trim().toLowerCase();
    if (f && !r.key.toLowerCase().includes(f)) return false;
    if (!$('problems').checked) return true;
    const m = r.data || {};
    return r.breaker !== 'closed' || !['available', 'unknown'].includes(r.health) || m.enabled === false ||
      num(m.queued) > 0 || (num(m.maxConcurrent) > 0 && num(m.inFlight) >= num(m.maxConcurrent)) ||
      [...st.alerts.values()].some((a) => a.node === r.node && a.alert.model === r.model);
  }

  function renderRow(r) {
    r.dirty = false;
    const hide = !shown(r);
    if (r.tr.hidden !== hide) r.tr.hidden = hide;
    const m = r.data || {};
    const off = m.enabled === false;
    setText(r.provider, (m.provider || '') + (off ? ' · disabled' : ''));
    r.tr.classList.toggle('disabled', off);
    setText(r.badge, r.breaker);
    setClass(r.badge, 'badge b-' + r.breaker);
    const by = !r.origin ? '' : r.adopted ? ' · adopted from ' + r.origin : ' · local';
    setText(r.since, (r.breakerSince ? 'for ' + fmtDur(Math.max(0, now() - r.breakerSince)) : '') + by);
    if (!r.origin) r.badge.removeAttribute('title');
    else r.badge.title = r.adopted ? 'opened by ' + r.origin + ', adopted by ' + r.node : 'opened by ' + r.node + ' on its own evidence';
    setText(r.healthEl, label(r.health));
    setClass(r.healthEl, 'badge h-' + r.health);
    setText(r.ramp, 'ramp ' + num(r.rampPct) + '%');
    const inFlight = num(m.inFlight), max = num(m.maxConcurrent), q = num(m.queued);
    setText(r.bulkText, inFlight + '/' + (max || '∞'));
    const use = max ? Math.min(1, inFlight / max) : 0;
    const w = Math.round(use * 100) + '%';
    if (r.barFill.style.width !== w) r.barFill.style.width = w;
    r.bar.classList.toggle('full', max > 0 && inFlight >= max);
    r.bar.title = 'bulkhead ' + Math.round(use * 100) + '% used';
    setText(r.queued, q ? 'q ' + q : '');
    const s = stats(r.points);
    setText(r.rps, (s.rate === null ? '–' : s.rate >= 10 ? s.rate.toFixed(0) : s.rate.toFixed(1)) + ' req/s');
    setText(r.success, s.success === null ? '– ok' : (s.success * 100).toFixed(s.success === 1 ? 0 : 1) + '% ok');
    const ev = m.evidence || {};
    const [p50, p99, unit] = fmtPair(num(ev.latencyP50Ms), num(ev.latencyP99Ms));
    setText(r.p50, 'p50 ' + p50 + ' ' + unit);
    setText(r.p99, 'p99 ' + p99 + ' ' + unit);
  }

  // stats sums the points of the last minute.
  function stats(points) {
    let req = 0, ok = 0, fail = 0, start = 0, end = 0;
    for (let i = points.length - 1; i >= 0; i--) {
      const p = points[i];
      if (p[0] < st.ref - STAT_SPAN) break;
      if (!end) end = p[0];
      req += p[1]; ok += p[2]; fail += p[3];
      start = i > 0 && p[0] - points[i - 1][0] <= 3 * st.meta.intervalMs ? points[i - 1][0] : p[0] - st.meta.intervalMs;
    }
    if (!end) return { rate: null, success: null };
    return { rate: req / Math.max(1, (end - start) / 1000), success: ok + fail ? ok / (ok + fail) : null };
  }

  // now is the server's time, as far as the samples tell.
  let clockSkew = 0;
  const now = () => Date.now() + clockSkew;

  function renderCharts(r) {
    r.chartDirty = false;
    const pts = r.points;
    const x0 = st.ref - st.meta.windowMs;
    const x = (t) => ((t - x0) / st.meta.windowMs * 120).toFixed(1);
    const gap = 3 * st.meta.intervalMs;
    const path = (val, max) => {
      let d = '';
      for (let i = 0; i < pts.length; i++) {
        const y = (28 - Math.min(1, val(pts[i], i) / max) * 26 - 1).toFixed(1);
        d += (i === 0 || pts[i][0] - pts[i - 1][0] > gap ? 'M' : 'L') + x(pts[i][0]) + ' ' + y;
      }
      return d;
    };
    let maxLat = 0, maxP99 = 0;
    for (const p of pts) { maxLat = Math.max(maxLat, p[5], p[4]); maxP99 = Math.max(maxP99, p[5]); }
    setText(r.latChart.scale, maxLat > 0 ? (maxLat >= 10000 ? fmtNum(maxLat / 1000) + ' s' : fmtNum(maxLat) + ' ms') : '');
    maxLat = Math.max(1, maxLat);
    maxLat *= 1.1;
    r.latChart.paths.p50.setAttribute('d', path((p) => p[4], maxLat));
    r.latChart.paths.p99.setAttribute('d', path((p) => p[5], maxLat));
    const last = pts[pts.length - 1];
    const latText = last ? 'latency now p50 ' + fmtMs(last[4]) + ' ms, p99 ' + fmtMs(last[5]) + ' ms; highest p99 in 10 min ' + fmtMs(maxP99) + ' ms'
      : 'no latency samples yet';
    r.latChart.title.textContent = latText;
    r.latChart.svg.setAttribute('aria-label', r.model + ' on ' + r.node + ': ' + latText);

    const dt = (p, i) => Math.max(0.001, (i > 0 && p[0] - pts[i - 1][0] <= gap ? p[0] - pts[i - 1][0] : st.meta.intervalMs) / 1000);
    let maxRate = 0, total = 0, failed = 0;
    pts.forEach((p, i) => { maxRate = Math.max(maxRate, p[1] / dt(p, i)); total += p[1]; failed += p[3]; });
    setText(r.trafficChart.scale, maxRate > 0 ? fmtNum(maxRate) + '/s' : '');
    maxRate = Math.max(0.1, maxRate);
    maxRate *= 1.1;
    r.trafficChart.paths.req.setAttribute('d', path((p, i) => p[1] / dt(p, i), maxRate));
    r.trafficChart.paths.fail.setAttribute('d', path((p, i) => p[3] / dt(p, i), maxRate));
    const trText = total + ' requests, ' + failed + ' failures in 10 min; peak ' + (maxRate / 1.1).toFixed(1) + ' req/s';
    r.trafficChart.title.textContent = trText;
    r.trafficChart.svg.setAttribute('aria-label', r.model + ' on ' + r.node + ': ' + trText);
  }

  function renderAlerts() {
    st.alertsDirty = false;
    const list = $('alert-list');
    const alerts = [...st.alerts.entries()].sort((a, b) => sevRank(b[1].alert) - sevRank(a[1].alert) || ms(b[1].alert.time) - ms(a[1].alert.time));
    const keep = new Set(alerts.map(([id]) => id));
    for (const li of [...list.children]) if (!keep.has(li.dataset.id)) li.remove();
    let prev = null;
    for (const [id, a] of alerts) {
      let li = list.querySelector('li[data-id="' + CSS.escape(id) + '"]');
      if (!li) {
        li = el('li');
        li.dataset.id = id;
        li.append(el('span', 'badge sev'), el('span', 'what'), el('span', 'since'));
        const b = el('button', '', 'Ack');
        b.type = 'button';
        b.dataset.cmd = 'alert_ack';
        b.dataset.alert = id;
        b.dataset.testid = 'ack-' + id;
        setAdmin(b);
        li.append(b);
      }
      const al = a.alert;
      const [sev, what, since, btn] = li.children;
      setText(sev, al.severity || 'info');
      setClass(sev, 'badge sev sev-' + (al.severity || 'info'));
      const where = [a.node, al.model].filter(Boolean).join('/');
      setText(what, (al.rule || '') + ': ' + (al.message || '') + (where ? ' (' + where + ')' : '') +
        (al.state === 'acknowledged' ? ' · acknowledged' + (al.actor ? ' by ' + al.actor : '') : al.state === 'escalated' ? ' · escalated' : ''));
      setText(since, al.time ? fmtDur(Math.max(0, now() - ms(al.time))) + ' ago' : '');
      btn.dataset.node = a.node || 'all';
      btn.hidden = al.state === 'acknowledged';
      btn.setAttribute('aria-label', 'Acknowledge alert ' + (al.rule || id) + (where ? ' on ' + where : ''));
      const want = prev ? prev.nextSibling : list.firstChild;
      if (want !== li) list.insertBefore(li, want);
      prev = li;
    }
    $('no-alerts').hidden = alerts.length > 0;
    const count = $('alert-count');
    setText(count, String(alerts.length));
    setClass(count, alerts.length ? 'count firing' : 'count');
  }
  const sevRank = (a) => ({ critical: 2, warning: 1 })[a.severity] || 0;

  function renderEvents() {
    const list = $('event-list');
    const frag = document.createDocumentFragment();
    for (let i = st.newEvents.length - 1; i >= 0; i--) {
      const ev = st.newEvents[i];
      frag.appendChild(el('li', 'k-' + ev.kind, ev.line));
    }
    st.newEvents = [];
    list.insertBefore(frag, list.firstChild);
    while (list.children.length > MAX_EVENTS) list.lastChild.remove();
  }

  function renderSummary() {
    let models = 0, open = 0, degraded = 0;
    for (const r of st.rows.values()) {
      models++;
      if (r.breaker === 'open' || r.breaker === 'forced_open') open++;
      if (r.health === 'degraded' || r.health === 'unavailable') degraded++;
    }
    setText($('summary'), st.nodes.size + ' node(s) · ' + models + ' model(s) · ' + open + ' open · ' +
      degraded + ' degraded or unavailable · ' + st.alerts.size + ' alert(s)');
    const c = $('conn');
    const quiet = Date.now() - st.lastMessage > 3 * st.meta.intervalMs + 1000;
    if (!st.connected && !st.everConnected) { setText(c, 'state of ' + clock(st.ref) + ' · connecting…'); setClass(c, 'conn conn-wait'); }
    else if (!st.connected) { setText(c, 'reconnecting…'); setClass(c, 'conn conn-down'); }
    else if (st.sampleError) { setText(c, 'live · ' + st.sampleError); setClass(c, 'conn conn-wait'); }
    else if (quiet) { setText(c, 'live · no sample for ' + fmtDur(Date.now() - st.lastMessage)); setClass(c, 'conn conn-wait'); }
    else { setText(c, 'live from node ' + st.meta.node); setClass(c, 'conn conn-live'); }
  }

  // Times in state change every second even when nothing else does.
  setInterval(() => {
    for (const r of st.rows.values()) if (r.breakerSince) r.dirty = true;
    for (const n of st.nodes.values()) n.dirty = true;
    if (st.alerts.size) st.alertsDirty = true;
    schedule();
  }, 1000);

  // ---------- admin ----------
  function showResult(text, ok) {
    const res = $('result');
    res.textContent = text;
    res.className = 'result ' + (ok ? 'ok' : 'bad');
  }

  async function admin(button) {
    const cmd = button.dataset.cmd;
    const token = $('token').value.trim();
    if (!token) {
      showResult('Type the operator token first (the field at the top right).', false);
      $('token').focus();
      return;
    }
    const body = { node: button.dataset.node || 'all', reason: $('reason').value };
    if (cmd === 'alert_ack') body.alertId = button.dataset.alert;
    else body.model = button.dataset.model;
    if (cmd === 'breaker_open') body.durationMs = Number($('duration').value);
    button.setAttribute('aria-busy', 'true');
    try {
      const res = await fetch('/api/admin/' + cmd, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: 'Bearer ' + token },
        body: JSON.stringify(body),
      });
      const data = await res.json().catch(() => ({}));
      if (res.status === 401) { showResult('Refused: the operator token is wrong.', false); return; }
      if (!res.ok) { showResult('Refused (' + res.status + '): ' + (data.error || res.statusText), false); return; }
      const lines = (data.replies || []).map((r) => r.ok ? r.node + ': ' + r.message : r.node + ': refused: ' + ((r.error || {}).message || 'error'));
      const refused = (data.replies || []).some((r) => !r.ok && (r.error || {}).code !== 'not_found');
      showResult(lines.join(' · ') || 'no node answered', !refused);
      for (const r of data.replies || []) { // enabled changes show at once; states come with their events
        for (const m of ((r.status || {}).models || [])) {
          const row = st.rows.get(r.node + '/' + m.name);
          if (row && row.data) { row.data = Object.assign({}, row.data, { enabled: m.enabled }); row.dirty = true; }
        }
      }
      schedule();
    } catch (e) {
      showResult('The node did not answer: ' + e.message, false);
    } finally {
      button.removeAttribute('aria-busy');
    }
  }

  document.addEventListener('click', (e) => {
    const b = e.target.closest('button[data-cmd]');
    if (b) admin(b);
  });

  // ---------- wiring ----------
  $('controls').addEventListener('submit', (e) => e.preventDefault()); // Enter in a field sends nothing
  const refilter = () => { for (const r of st.rows.values()) r.dirty = true; schedule(); };
  $('filter').addEventListener('input', refilter);
  $('problems').addEventListener('change', refilter);
  const token = $('token');
  try { token.value = sessionStorage.getItem(TOKEN_KEY) || ''; } catch (e) { /* storage off */ }
  token.addEventListener('input', () => {
    try { sessionStorage.setItem(TOKEN_KEY, token.value); } catch (e) { /* storage off */ }
  });

  // follow opens the event stream after the event lastId. The browser
  // reopens a stream that breaks by itself (sending Last-Event-ID), but
  // gives one up for good when the answer is not an event stream: a
  // proxy's 502 while the node restarts, the node's 503 while it stops.
  // Then the page opens a new one, after a wait that grows to 5 s.
  function follow(lastId) {
    const es = new EventSource('/api/events' + (lastId ? '?lastEventId=' + encodeURIComponent(lastId) : ''));
    es.onopen = () => {
      const back = st.everConnected;
      st.connected = true;
      st.everConnected = true;
      st.reopenMs = 0;
      schedule();
      if (back) refresh();
    };
    es.onerror = () => {
      st.connected = es.readyState === EventSource.OPEN;
      if (es.readyState === EventSource.CLOSED) {
        st.reopenMs = Math.min(5000, Math.max(1000, st.reopenMs * 2));
        setTimeout(() => follow(st.stream ? st.stream + '-' + st.lastSeq : lastId), st.reopenMs);
      }
      schedule();
    };
    es.addEventListener('event', (m) => applyEvent(JSON.parse(m.data)));
    es.addEventListener('sample', (m) => {
      const s = JSON.parse(m.data);
      clockSkew = s.sampledAt - Date.now();
      applySample(s);
    });
  }

  // refresh loads the state again after the stream came back: its history
  // fills what the charts missed while the page was away. The stream's
  // first sample has brought the rest already; a failure changes nothing.
  async function refresh() {
    try {
      const res = await fetch('/api/state');
      if (res.ok) applyState(await res.json());
    } catch (e) { /* the next sample comes anyway */ }
  }

  // begin draws the state s at once (not on the next render tick: the
  // first paint must show it) and goes live.
  function begin(s) {
    clockSkew = s.sampledAt - Date.now();
    applyState(s);
    clearTimeout(timer);
    render();
    follow(s.lastEventId);
  }

  async function start() {
    try {
      const res = await fetch('/api/state');
      if (!res.ok) throw new Error('HTTP ' + res.status);
      begin(await res.json());
    } catch (e) {
      console.warn('dashboard: loading the state failed:', e);
      setText($('conn'), 'no answer from the node (' + e.message + '); retrying');
      setClass($('conn'), 'conn conn-down');
      setTimeout(start, 2000);
    }
  }

  let embedded = null;
  try { embedded = JSON.parse($('hive-state').textContent); } catch (e) { /* not filled in */ }
  if (embedded && embedded.sampledAt) begin(embedded);
  else start();
})();
