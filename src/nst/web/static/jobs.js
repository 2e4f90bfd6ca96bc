// Job cards, their event streams and the job list kept in step with the server.
import { state, say, message, ENDED } from "./state.js";
import { thumb, setInit } from "./images.js";
import { estimate, runAgain } from "./form.js";

import { $, fmtTime, api } from "./common.js";
import { openZoom } from "./zoom.js";

export function card(id) {
  if (state.cards.has(id)) return state.cards.get(id);
  const node = $("#job-template").content.firstElementChild.cloneNode(true);
  node.dataset.id = id;
  node.losses = [];
  node.setAttribute("aria-label", `run ${id.slice(0, 8)}`);
  $(".cancel", node).addEventListener("click", () => api(`/api/jobs/${id}/cancel`, { method: "POST" })
    .catch((e) => message(e.message)));
  $(".reuse", node).addEventListener("click", () => setInit(node.job));
  $(".again", node).addEventListener("click", () => runAgain(node.job));
  // a run the server's stop interrupted goes on from its checkpoint, where it was
  $(".continue", node).addEventListener("click", async () => {
    try {
      const job = await api(`/api/jobs/${id}/continue`, { method: "POST" });
      showJob(job);
      follow(id);
      say("Run continues");
    } catch (err) { message(err.message); }
  });
  $(".remove", node).addEventListener("click", async () => {
    await api(`/api/jobs/${id}`, { method: "DELETE" }).catch(() => null);
    dropCard(id);
  });
  $(".format", node).addEventListener("change", () => downloadLink(node));
  const slider = $(".compare-slider", node);
  slider.addEventListener("input", () => { $(".compare", node).style.setProperty("--reveal", `${slider.value}%`); });
  const open = () => {
    if (!node.job || !node.job.result) return;
    openZoom(node.job.result, `Result of run ${id.slice(0, 8)}`);
  };
  $(".preview", node).addEventListener("click", open);
  $(".preview", node).addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") { e.preventDefault(); open(); }
  });
  // newest first, so the tab order follows what the eye sees
  $("#job-list").prepend(node);
  $("#no-jobs").hidden = true;
  state.cards.set(id, node);
  return node;
}

export function dropCard(id) {
  closeStream(id);
  const node = state.cards.get(id);
  if (node) node.remove();
  state.cards.delete(id);
  if (state.initJob === id) setInit(null);
  $("#no-jobs").hidden = state.cards.size > 0;
}

export function downloadLink(node) {
  const job = node.job;
  if (!job || !job.result) return;
  const ext = $(".format", node).value;
  $(".download", node).href = ext === "png" ? job.result + "?download=1" : job.result.replace(/\.png$/, `.${ext}`);
  $(".download", node).textContent = `Download ${ext === "jpg" ? "JPEG" : ext.toUpperCase().replace("WEBP", "WebP")}`;
}

export function stateText(job) {
  if (job.state === "queued" && job.position) {
    const wait = job.wait > 0 ? ` · starts in about ${fmtTime(job.wait)}` : "";
    return `queued · place ${job.position}${wait}`;
  }
  if (job.state === "interrupted") return "interrupted (server stopped)";
  return job.state;
}

export function showJob(job) {
  const node = card(job.id);
  node.job = job;
  node.dataset.state = job.state;
  node.dataset.continuable = job.continuable ? "1" : "0";
  $(".state", node).textContent = stateText(job);
  const p = job.params;
  const blend = p.style_blend ? ` · blend ${p.style_blend}` : "";
  $(".params", node).textContent =
    `${p.size} px · α/β ${(p.content_weight / p.style_weight).toExponential(1)} · ` +
    `${p.iterations} iterations · ${p.pooling} pooling · init ${p.init}` +
    (job.progress && job.progress.seed != null ? ` · seed ${job.progress.seed}` : "") +
    (p.preserve_colors !== "none" ? ` · colours ${p.preserve_colors}` : "") + blend +
    (p.regions && p.regions.length ? " · painted regions" : "");
  $(".error", node).textContent = job.error || "";
  const inputs = $(".inputs", node);
  if (!inputs.childElementCount && job.inputs) {
    if (job.inputs.content) inputs.append(thumb(job.inputs.content, "content used"));
    job.inputs.styles.forEach((u, i) => inputs.append(thumb(u, `style ${i + 1} used`)));
    if (job.inputs.content) $(".before", node).src = job.inputs.content;
  }
  if (job.result && node.dataset.hasResult !== "1") {
    node.dataset.hasResult = "1";
    $(".preview", node).src = job.result + "?t=" + Date.now();
    const preview = $(".preview", node);
    preview.classList.add("result");
    preview.alt = "the result: Enter or a click opens it full size";
    preview.tabIndex = 0;
    preview.setAttribute("role", "button");
    downloadLink(node);
  } else if (job.preview && !job.result) {
    $(".preview", node).src = job.preview;
  }
  if (job.losses && job.losses.length > node.losses.length) { node.losses = job.losses.slice(); plot(node); }
  const made = job.progress || {};
  if (ENDED.includes(job.state)) {  // how far it came, from the record (also after a reload)
    $(".bar", node).value = job.state === "done" ? 1 : (made.total ? (made.done || 0) / made.total : 0);
    const it = made.done != null ? `iteration ${made.done}/${made.total}` : "";
    const took = job.elapsed != null ? `took ${fmtTime(job.elapsed)}` : "";
    $(".progress-text", node).textContent = [it, took].filter(Boolean).join(" · ");
  } else if (made.total) {
    progress(node, made);
  }
  return node;
}

export function progress(node, step) {
  node.step = step;
  $(".bar", node).value = step.total ? step.done / step.total : 0;
  // no ETA once the server is gone or the run ended (the server's stop can end it just
  // before the stream drops, with no answer left to show how long it took)
  const live = state.online && !ENDED.includes(node.dataset.state);
  const eta = step.eta != null && live ? ` · ETA ${fmtTime(step.eta)}` : "";
  $(".progress-text", node).textContent =
    `iteration ${step.done}/${step.total} · loss ${Number(step.loss).toPrecision(4)}${eta}`;
}

// The loss curve on log axes: decades on the left, iterations along the bottom.
export function plot(node) {
  const canvas = $(".plot", node);
  const ctx = canvas.getContext("2d");
  const dark = matchMedia("(prefers-color-scheme: dark)").matches;
  const ink = dark ? "#dfe4f0" : "#1c2230";
  const values = node.losses.filter((v) => v > 0).map(Math.log10);
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const L = 40, R = 8, T = 18, B = 22;
  const w = canvas.width - L - R, h = canvas.height - T - B;
  ctx.strokeStyle = ink; ctx.fillStyle = ink; ctx.lineWidth = 1;
  ctx.font = "10px system-ui, sans-serif";
  ctx.beginPath(); ctx.moveTo(L, T); ctx.lineTo(L, T + h); ctx.lineTo(L + w, T + h); ctx.stroke();
  ctx.fillText("loss (log)", 4, 11);
  ctx.fillText("iteration", L + w - 44, canvas.height - 4);
  if (values.length < 2) return;
  let lo = Math.min(...values), hi = Math.max(...values);
  if (hi - lo < 1e-6) { lo -= 0.5; hi += 0.5; }
  const y = (v) => T + h - ((v - lo) / (hi - lo)) * h;
  for (let d = Math.ceil(lo); d <= Math.floor(hi); d++) {
    ctx.fillText(`1e${d}`, 4, y(d) + 3);
    ctx.beginPath(); ctx.moveTo(L - 3, y(d)); ctx.lineTo(L, y(d)); ctx.stroke();
  }
  ctx.fillText("0", L - 3, T + h + 12);
  ctx.fillText(String(values.length - 1), L + w - 16, T + h + 12);
  ctx.strokeStyle = dark ? "#8fb0ff" : "#3056d3";
  ctx.lineWidth = 1.5;
  ctx.beginPath();
  values.forEach((v, i) => {
    const px = L + (i / (values.length - 1)) * w;
    if (i === 0) ctx.moveTo(px, y(v)); else ctx.lineTo(px, y(v));
  });
  ctx.stroke();
  node.dataset.points = String(values.length);
}

// -- one event stream for every job the page follows --------------------------------------------
// (a browser opens at most six connections to a host: a stream per job froze the page with six
// unfinished runs). state.followed maps a job to the first record it still wants; a record
// already seen (after a reconnection) is skipped by its sequence number.
export function closeStream(id) {
  if (state.followed.delete(id)) soon();
}

export function follow(id) {
  if (state.followed.has(id)) return;
  card(id).losses = [];  // its records come again from the first: the curve is drawn anew
  state.followed.set(id, 0);
  soon();
}

// one new stream for all the changes of this task (a list of new jobs opens one, not one each)
function soon() {
  if (state.reopening) return;
  state.reopening = true;
  queueMicrotask(() => { state.reopening = false; reopen(); });
}

function reopen() {
  if (state.stream) state.stream.close();
  state.stream = null;
  if (!state.followed.size) return;
  const positions = [...state.followed].map(([id, seq]) => `${id}:${seq}`).join(",");
  const source = new EventSource(`/api/events?follow=${positions}`);
  state.stream = source;
  source.addEventListener("open", () => { answer(probe(), true); });
  for (const kind of ["step", "preview", "state", "place", "failed"]) {
    source.addEventListener(kind, (e) => record(kind, JSON.parse(e.data)));
  }
  source.addEventListener("end", (e) => ended(JSON.parse(e.data).job));
  source.addEventListener("gone", (e) => { state.followed.delete(JSON.parse(e.data).job); });
  source.onerror = () => {
    if (source !== state.stream) return;
    // the server went away (the browser retries by itself) or refused the stream
    if (source.readyState === EventSource.CLOSED) {
      state.stream = null;
      checkServer().then(() => { if (state.online) reopen(); });
      return;
    }
    checkServer();
  };
}

function record(kind, data) {
  const id = data.job, next = state.followed.get(id);
  if (next === undefined || data.seq < next) return;  // not followed, or seen already
  state.followed.set(id, data.seq + 1);
  const node = card(id);
  if (kind === "step") {
    node.losses.push(data.loss);
    progress(node, data);
    plot(node);
  } else if (kind === "preview") {
    $(".preview", node).src = data.url;
  } else if (kind === "state") {
    node.dataset.state = data.state;
    if (node.step && ENDED.includes(data.state)) progress(node, node.step);  // its ETA goes
    if (data.state !== "interrupted") node.dataset.continuable = "0";
    $(".state", node).textContent = stateText(data);
    if (data.state === "running") say("Run started");
  } else if (kind === "place") {  // moved up the queue (visitors take turns)
    if (node.dataset.state === "queued") $(".state", node).textContent = stateText({ ...data, state: "queued" });
  } else if (kind === "failed") {
    $(".error", node).textContent = data.error;
  }
}

async function ended(id) {
  if (!state.followed.delete(id)) return;
  state.tick += 1;
  state.ends.set(id, state.tick);
  if (!state.followed.size && state.stream) { state.stream.close(); state.stream = null; }
  try {
    const job = await api(`/api/jobs/${id}`);
    showJob(job);
    say(`Run ${job.state}${job.error ? ": " + job.error : ""}`);
    estimate();
  } catch (err) { /* removed meanwhile */ }
}

// -- the connection, and other tabs --------------------------------------------------------------
// The page asks whether the server is there in several ways at once (the job list every few
// seconds, a check when the stream fails, the stream opening); on a busy machine their answers
// can arrive out of order, and an old "yes" must not undo a newer "no" (a stale ETA came back
// on a page whose server had stopped). Only an answer to a later question than the last one
// taken counts.
let questions = 0, answered = 0;
function probe() { questions += 1; return questions; }
function answer(question, up) {
  if (question <= answered) return false;
  answered = question;
  connection(up);
  return true;
}

export function connection(up) {
  if (up === state.online) return;
  state.online = up;
  $("#connection").hidden = up;
  for (const node of state.cards.values()) {
    node.classList.toggle("offline", !up);
    if (node.step && !ENDED.includes(node.dataset.state)) progress(node, node.step);  // no stale ETA
  }
  if (up) {
    if (!state.stream && state.followed.size) reopen();  // the stream was refused: open it again
    sync();
  }
}

export async function checkServer() {
  const question = probe();
  try {
    await api("/api/jobs");
    answer(question, true);
  } catch (err) {
    answer(question, false);
  }
}

// Every few seconds: jobs removed in another tab go, new ones come, and a lost server is noticed.
export async function sync() {
  let jobs;
  const asked = state.tick;
  const question = probe();
  try { jobs = await api("/api/jobs"); } catch (err) { answer(question, false); return; }
  if (!answer(question, true)) return;  // a later question was answered first: this list is old
  const seen = new Set();
  for (const job of jobs.filter((j) => j.kind === "stylize")) {
    seen.add(job.id);
    // a list asked for before this job's stream ended says it runs: it is stale for this job
    if ((state.ends.get(job.id) || 0) > asked) continue;
    const node = state.cards.get(job.id);
    if (!node || !state.followed.has(job.id)) showJob(job);
    if (!ENDED.includes(job.state)) follow(job.id);
  }
  for (const id of [...state.cards.keys()]) if (!seen.has(id)) dropCard(id);
}

