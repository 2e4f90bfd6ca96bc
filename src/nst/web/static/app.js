// nst web page: picks inputs, starts jobs through /api/jobs, follows them over SSE.
"use strict";

const state = {
  contentBuiltin: "builtin:chelsea",
  contentFile: null,
  styleBuiltins: new Set(["builtin:swirls"]),
  styleFiles: [],
  initJob: null,
  fields: [],
  cards: new Map(),
  streams: new Map(),
};

function ratioText(value) {
  return `α/β = ${Math.pow(10, Number(value)).toExponential(1)}`;
}

// -- inputs ---------------------------------------------------------------------------------
function renderChosen() {
  const content = $("#content-chosen");
  content.replaceChildren();
  const cimg = document.createElement("img");
  if (state.contentFile) cimg.src = URL.createObjectURL(state.contentFile);
  else cimg.src = `/api/builtins/${state.contentBuiltin.split(":")[1]}.png`;
  content.append(cimg);
  const styles = $("#style-chosen");
  styles.replaceChildren();
  for (const f of state.styleFiles) {
    const img = document.createElement("img");
    img.src = URL.createObjectURL(f);
    styles.append(img);
  }
  for (const name of state.styleBuiltins) {
    const img = document.createElement("img");
    img.src = `/api/builtins/${name.split(":")[1]}.png`;
    styles.append(img);
  }
  for (const img of document.querySelectorAll("#content-gallery img")) {
    img.classList.toggle("selected", !state.contentFile && img.dataset.name === state.contentBuiltin);
  }
  for (const img of document.querySelectorAll("#style-gallery img")) {
    img.classList.toggle("selected", state.styleBuiltins.has(img.dataset.name));
  }
}

async function loadBuiltins() {
  const items = await api("/api/builtins");
  for (const item of items) {
    // photos are offered as content, paintings as styles
    for (const gallery of [item.kind === "photo" ? $("#content-gallery") : $("#style-gallery")]) {
      const img = document.createElement("img");
      img.src = item.url;
      img.alt = item.name;
      img.title = item.name;
      img.dataset.name = item.name;
      img.addEventListener("click", () => {
        if (gallery.id === "content-gallery") {
          state.contentBuiltin = item.name;
          state.contentFile = null;
          $("#content-file").value = "";
        } else if (state.styleBuiltins.has(item.name)) {
          state.styleBuiltins.delete(item.name);
        } else {
          state.styleBuiltins.add(item.name);
        }
        renderChosen();
      });
      gallery.append(img);
    }
  }
  renderChosen();
}

// -- the settings form, built from the option declarations (/api/config) ----------------------
// content_weight and style_weight are set by the balance slider (alpha/beta); every other
// option the server lets a page set gets a control by its kind, range and choices.
const SLIDER = new Set(["content_weight", "style_weight"]);
const FORM_DEFAULTS = { size: 256, iterations: 300 };  // smaller than the CLI's for a first try

async function loadConfig() {
  const schema = await api("/api/config");
  state.fields = schema.fields;
  buildForm(schema.fields, { skip: SLIDER, defaults: FORM_DEFAULTS });
}

function params() {
  const ratio = Math.pow(10, Number($("#ratio").value));
  return {
    content_weight: 1,
    style_weight: Number((1 / ratio).toPrecision(4)),
    ...formValues(state.fields, SLIDER),
  };
}

async function submit(event) {
  event.preventDefault();
  $("#message").textContent = "";
  const form = new FormData();
  if (state.contentFile) form.append("content", state.contentFile);
  else form.append("content_builtin", state.contentBuiltin);
  for (const f of state.styleFiles) form.append("style", f);
  for (const name of state.styleBuiltins) form.append("style_builtin", name);
  if (state.initJob) form.append("init_job", state.initJob);
  form.append("params", JSON.stringify(params()));
  $("#start").disabled = true;
  try {
    const job = await api("/api/jobs", { method: "POST", body: form });
    showJob(job);
    follow(job.id);
  } catch (err) {
    $("#message").textContent = err.message;
  } finally {
    $("#start").disabled = false;
  }
}

// -- jobs -----------------------------------------------------------------------------------
function card(id) {
  if (state.cards.has(id)) return state.cards.get(id);
  const node = $("#job-template").content.firstElementChild.cloneNode(true);
  node.dataset.id = id;
  node.losses = [];
  $(".cancel", node).addEventListener("click", () => api(`/api/jobs/${id}/cancel`, { method: "POST" })
    .catch((e) => { $("#message").textContent = e.message; }));
  $(".reuse", node).addEventListener("click", () => {
    state.initJob = id;
    $("#init-job-id").textContent = id.slice(0, 8);
    $("#init-job-badge").hidden = false;
  });
  $(".remove", node).addEventListener("click", async () => {
    await api(`/api/jobs/${id}`, { method: "DELETE" }).catch(() => null);
    closeStream(id);
    node.remove();
    state.cards.delete(id);
    $("#no-jobs").hidden = state.cards.size > 0;
  });
  $("#job-list").append(node);
  $("#no-jobs").hidden = true;
  state.cards.set(id, node);
  return node;
}

function showJob(job) {
  const node = card(job.id);
  node.dataset.state = job.state;
  $(".state", node).textContent = job.state;
  const p = job.params;
  $(".params", node).textContent =
    `${p.size} px · α/β ${(p.content_weight / p.style_weight).toExponential(1)} · ` +
    `${p.iterations} iterations · ${p.pooling} pooling · init ${p.init}` +
    (job.progress && job.progress.seed != null ? ` · seed ${job.progress.seed}` : "") +
    (p.preserve_colors !== "none" ? ` · colours ${p.preserve_colors}` : "");
  if (job.error) $(".error", node).textContent = job.error;
  if (job.result) {
    node.dataset.hasResult = "1";
    $(".preview", node).src = job.result + "?t=" + Date.now();
    $(".preview", node).classList.add("result");
    $(".download", node).href = job.result + "?download=1";
  } else if (job.preview) {
    $(".preview", node).src = job.preview;
  }
  if (job.progress && job.progress.total) progress(node, job.progress);
}

function progress(node, step) {
  $(".bar", node).value = step.total ? step.done / step.total : 0;
  const eta = step.eta != null ? ` · ETA ${fmtTime(step.eta)}` : "";
  $(".progress-text", node).textContent =
    `iteration ${step.done}/${step.total} · loss ${Number(step.loss).toPrecision(4)}${eta}`;
}

function plot(node) {
  const canvas = $(".plot", node);
  const ctx = canvas.getContext("2d");
  const values = node.losses.filter((v) => v > 0).map(Math.log10);
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (values.length < 2) return;
  const lo = Math.min(...values), hi = Math.max(...values);
  ctx.strokeStyle = "#3056d3";
  ctx.lineWidth = 1.5;
  ctx.beginPath();
  values.forEach((v, i) => {
    const x = 4 + (i / (values.length - 1)) * (canvas.width - 8);
    const y = canvas.height - 4 - ((v - lo) / (hi - lo || 1)) * (canvas.height - 8);
    if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
  });
  ctx.stroke();
  ctx.fillStyle = "#1c2230";
  ctx.font = "10px sans-serif";
  ctx.fillText(`loss ${Math.pow(10, values[values.length - 1]).toPrecision(3)}`, 6, 12);
}

function closeStream(id) {
  const source = state.streams.get(id);
  if (source) source.close();
  state.streams.delete(id);
}

function follow(id) {
  if (state.streams.has(id)) return;
  const node = card(id);
  const source = new EventSource(`/api/jobs/${id}/events`);
  state.streams.set(id, source);
  source.addEventListener("step", (e) => {
    const step = JSON.parse(e.data);
    node.losses.push(step.loss);
    progress(node, step);
    plot(node);
  });
  source.addEventListener("preview", (e) => {
    const p = JSON.parse(e.data);
    $(".preview", node).src = p.url;
  });
  source.addEventListener("state", (e) => {
    const s = JSON.parse(e.data).state;
    node.dataset.state = s;
    $(".state", node).textContent = s;
  });
  source.addEventListener("failed", (e) => {
    $(".error", node).textContent = JSON.parse(e.data).error;
  });
  source.addEventListener("end", async () => {
    closeStream(id);
    try { showJob(await api(`/api/jobs/${id}`)); } catch (err) { /* removed meanwhile */ }
  });
  source.onerror = () => {
    // the server went away or the job expired: stop retrying if it is gone
    api(`/api/jobs/${id}`).catch(() => closeStream(id));
  };
}

async function reattach() {
  const jobs = await api("/api/jobs");
  for (const job of jobs.filter((j) => j.kind === "stylize")) {
    showJob(job);
    if (!["done", "cancelled", "failed"].includes(job.state)) follow(job.id);
  }
}

function init() {
  $("#ratio-label").textContent = ratioText($("#ratio").value);
  $("#ratio").addEventListener("input", (e) => { $("#ratio-label").textContent = ratioText(e.target.value); });
  $("#content-file").addEventListener("change", (e) => {
    state.contentFile = e.target.files[0] || null;
    renderChosen();
  });
  $("#style-file").addEventListener("change", (e) => {
    state.styleFiles = Array.from(e.target.files);
    if (state.styleFiles.length) state.styleBuiltins.clear();
    renderChosen();
  });
  $("#init-job-clear").addEventListener("click", () => {
    state.initJob = null;
    $("#init-job-badge").hidden = true;
  });
  $("#job-form").addEventListener("submit", submit);
  Promise.all([loadBuiltins(), loadConfig()]).then(reattach)
    .catch((err) => { $("#message").textContent = err.message; });
}

init();
