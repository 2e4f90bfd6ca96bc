// nst web page: picks inputs, starts jobs through /api/jobs, follows them over SSE.
"use strict";

const state = {
  contentBuiltin: "builtin:chelsea",
  contentFile: null,
  styleBuiltins: ["builtin:swirls"],
  styleFiles: [],
  weights: new Map(),        // style key -> blend weight (0..1)
  initJob: null,
  fields: [],
  limits: {},
  bundles: {},               // preset name -> its options (from /api/config)
  cards: new Map(),
  streams: new Map(),
  ends: new Map(),           // job id -> the tick at which its stream said "end"
  tick: 0,                   // counts stream ends, so a job list read before one is known stale
  online: true,
  mask: { painted: false, brush: 1 },
  thumbs: new Map(),         // built-in name -> its inlined thumbnail (a data URL)
};
const STORE = "nst-form-v1";
const PALETTE = ["#ff0000", "#0000ff", "#ffff00", "#ff00ff", "#00ffff"];
const KEEP = "#00ff00";

function ratioText(value) {
  return `α/β = ${Math.pow(10, Number(value)).toExponential(1)}`;
}

function say(text) { $("#announce").textContent = text; }
function message(text) { $("#message").textContent = text || ""; }
function builtinUrl(name) { return `/api/builtins/${name.split(":")[1]}.png`; }
function builtinThumb(name) { return state.thumbs.get(name) || builtinUrl(name); }

// -- inputs ---------------------------------------------------------------------------------
// Styles are sent uploads first, then built-ins: the blend weights follow that order.
function styleList() {
  return [
    ...state.styleFiles.map((f, i) => ({ key: `file:${i}:${f.name}`, label: f.name, file: f })),
    ...state.styleBuiltins.map((n) => ({ key: n, label: n.split(":")[1], builtin: n })),
  ];
}

function thumb(src, alt) {
  const img = document.createElement("img");
  img.src = src;
  img.alt = alt;
  return img;
}

function renderChosen() {
  const content = $("#content-chosen");
  content.replaceChildren();
  const src = state.contentFile ? URL.createObjectURL(state.contentFile) : builtinUrl(state.contentBuiltin);
  const label = state.contentFile ? state.contentFile.name : state.contentBuiltin.split(":")[1];
  const img = thumb(src, `content: ${label}`);
  img.addEventListener("load", () => { state.contentAspect = img.naturalHeight / img.naturalWidth; estimate(); });
  content.append(img);
  if (state.contentFile) {
    const clear = document.createElement("button");
    clear.type = "button";
    clear.className = "remove-input";
    clear.textContent = "×";
    clear.setAttribute("aria-label", `remove ${label}`);
    clear.addEventListener("click", () => { state.contentFile = null; $("#content-file").value = ""; renderChosen(); });
    content.append(clear);
  }
  if ($("#mask-photo").dataset.src !== src) { $("#mask-photo").dataset.src = src; $("#mask-photo").src = src; }
  const styles = $("#style-chosen");
  styles.replaceChildren();
  const list = styleList();
  list.forEach((s, i) => {
    const li = document.createElement("li");
    li.dataset.key = s.key;
    li.append(thumb(s.file ? URL.createObjectURL(s.file) : builtinThumb(s.builtin), `style ${i + 1}: ${s.label}`));
    const name = document.createElement("span");
    name.textContent = `${i + 1}. ${s.label}`;
    li.append(name);
    if (list.length > 1) {
      const w = document.createElement("input");
      w.type = "range"; w.min = "0"; w.max = "1"; w.step = "0.05";
      w.className = "style-weight";
      w.value = String(state.weights.get(s.key) ?? 1);
      w.setAttribute("aria-label", `weight of style ${i + 1} (${s.label})`);
      w.addEventListener("input", () => { state.weights.set(s.key, Number(w.value)); save(); });
      li.append(w);
    }
    const rm = document.createElement("button");
    rm.type = "button";
    rm.className = "remove-input";
    rm.textContent = "×";
    rm.setAttribute("aria-label", `remove style ${s.label}`);
    rm.addEventListener("click", () => {
      if (s.file) state.styleFiles = state.styleFiles.filter((f) => f !== s.file);
      else state.styleBuiltins = state.styleBuiltins.filter((n) => n !== s.builtin);
      state.weights.delete(s.key);
      renderChosen();
    });
    li.append(rm);
    styles.append(li);
  });
  for (const b of document.querySelectorAll("#content-gallery .thumb")) {
    b.setAttribute("aria-pressed", String(!state.contentFile && b.dataset.name === state.contentBuiltin));
  }
  for (const b of document.querySelectorAll("#style-gallery .thumb")) {
    b.setAttribute("aria-pressed", String(state.styleBuiltins.includes(b.dataset.name)));
  }
  renderBrushes();
  save();
}

async function loadBuiltins() {
  const items = await api("/api/builtins");
  for (const item of items) {
    // photos are offered as content, paintings as styles
    const gallery = item.kind === "photo" ? $("#content-gallery") : $("#style-gallery");
    const b = document.createElement("button");
    b.type = "button";
    b.className = "thumb";
    b.dataset.name = item.name;
    b.setAttribute("aria-pressed", "false");
    b.setAttribute("aria-label", `${item.kind}: ${item.title || item.name.split(":")[1]}`);
    b.title = item.title || item.name;
    if (item.thumb) state.thumbs.set(item.name, item.thumb);
    b.append(thumb(item.thumb || item.url, ""));
    b.addEventListener("click", () => {
      if (gallery.id === "content-gallery") {
        state.contentBuiltin = item.name;
        state.contentFile = null;
        $("#content-file").value = "";
      } else if (state.styleBuiltins.includes(item.name)) {
        state.styleBuiltins = state.styleBuiltins.filter((n) => n !== item.name);
      } else {
        state.styleBuiltins.push(item.name);
      }
      renderChosen();
    });
    gallery.append(b);
  }
  renderChosen();
}

function images(files, role) {
  const ok = [];
  for (const f of files) {
    if (f.type && f.type.startsWith("image/")) ok.push(f);
    else message(`${f.name} is not an image (${f.type || "unknown type"}); pick a PNG, JPEG or WebP`);
  }
  if (ok.length) message("");
  return role === "content" ? ok.slice(0, 1) : ok;
}

function setContent(files) {
  const [f] = images(files, "content");
  if (f) { state.contentFile = f; clearMask(); renderChosen(); }
}

function addStyles(files) {
  // uploaded paintings replace the built-in ones chosen (click those again to blend them in)
  const ok = images(files, "style");
  if (ok.length) { state.styleFiles.push(...ok); state.styleBuiltins = []; renderChosen(); }
}

// Drag and drop: onto the content or the style section; a file dropped anywhere else is
// ignored instead of replacing the page.
function setupDrop() {
  for (const type of ["dragover", "drop"]) window.addEventListener(type, (e) => e.preventDefault());
  for (const zone of document.querySelectorAll("[data-drop]")) {
    zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
    zone.addEventListener("dragleave", () => zone.classList.remove("over"));
    zone.addEventListener("drop", (e) => {
      e.preventDefault();
      zone.classList.remove("over");
      const files = Array.from(e.dataTransfer ? e.dataTransfer.files : []);
      if (zone.dataset.drop === "content") setContent(files); else addStyles(files);
    });
  }
}

// -- the settings form, built from the option declarations (/api/config) ----------------------
// content_weight and style_weight are set by the balance slider (alpha/beta); style_blend by
// the per-style sliders; every other option a page may set gets a control by its kind,
// range and choices.
const SLIDER = new Set(["content_weight", "style_weight", "style_blend"]);
// The strength buttons set the balance only (log10 of alpha/beta); time is the preset's and
// the size's business.
const STRENGTH = { subtle: -2, balanced: -3, strong: -4 };
const ENDED = ["done", "cancelled", "failed", "interrupted"];
const LONG_RUN = 600;  // seconds: an estimate over this is said before Start

async function loadConfig() {
  const schema = await api("/api/config");
  state.fields = schema.fields;
  state.limits = schema.limits;
  state.bundles = schema.presets || {};
  buildForm(schema.fields, { skip: SLIDER });
  for (const f of schema.fields) {
    const input = document.getElementById(f.name);
    if (input) input.addEventListener("change", () => { save(); estimate(); markPreset(); });
  }
  const preset = document.getElementById("preset");
  if (preset) preset.addEventListener("change", () => { applyBundle(preset.value); save(); estimate(); });
}

// A preset (the server's named bundle of options) sets the form's controls to its values;
// the first visit starts from the page's default preset.
function applyBundle(name) {
  const bundle = state.bundles[name];
  if (!bundle) return;
  for (const [option, value] of Object.entries(bundle)) {
    const most = field(option)?.max;  // the declaration's bound or this server's cap
    setValue(option, typeof value === "number" && most != null ? Math.min(value, most) : value);
  }
  if ("content_weight" in bundle || "style_weight" in bundle) {
    const weight = (name) => bundle[name] ?? field(name).default;
    const ratio = Math.log10(weight("content_weight") / weight("style_weight"));
    $("#ratio").value = Math.round(ratio * 2) / 2;
    $("#ratio-label").textContent = ratioText($("#ratio").value);
  }
  markPreset();
}

// an option's field as /api/config declares it
function field(name) {
  return state.fields.find((f) => f.name === name);
}

function setValue(name, value) {
  const input = document.getElementById(name);
  if (!input) return;
  if (input.type === "checkbox") input.checked = Boolean(value);
  else input.value = value == null ? "" : String(value);
}

function applyStrength(name) {
  $("#ratio").value = STRENGTH[name];
  $("#ratio-label").textContent = ratioText(STRENGTH[name]);
  markPreset();
  save();
}

function markPreset() {
  for (const b of document.querySelectorAll("[data-preset]")) {
    b.setAttribute("aria-pressed", String(Number($("#ratio").value) === STRENGTH[b.dataset.preset]));
  }
}

function params() {
  const ratio = Math.pow(10, Number($("#ratio").value));
  const p = {
    content_weight: 1,
    style_weight: Number((1 / ratio).toPrecision(4)),
    ...formValues(state.fields, SLIDER),
  };
  const list = styleList();
  if (list.length > 1) {
    const w = list.map((s) => state.weights.get(s.key) ?? 1);
    if (w.some((x) => x !== w[0])) p.style_blend = w.map((x) => Math.max(x, 0.001)).join(",");
  }
  if (state.mask.painted) p.regions = regions();
  return p;
}

// The page checks each value by the server's rules first (/api/config: kinds, exclusive
// bounds, this server's caps); the server checks again, and its 422 names the field.
function validate() {
  clearInvalid($("#job-form"));
  for (const f of state.fields) {
    const input = document.getElementById(f.name);
    if (!input || SLIDER.has(f.name)) continue;
    const problem = problemOf(f, input);
    if (problem) {
      markInvalid(input, "message");
      return `${f.label}: ${problem}`;
    }
  }
  if (!styleList().length) return "pick or upload at least one style image";
  if (styleList().length > (state.limits.max_styles || 4)) return `at most ${state.limits.max_styles} style images`;
  return null;
}

// A server's refusal of one option, in the form's words, with that field marked.
function refused(err) {
  const f = state.fields.find((x) => x.name === err.field);
  const input = f && document.getElementById(f.name);
  if (!input) return err.message;
  markInvalid(input, "message");
  const what = f.name.replace(/_/g, "-");  // the server's messages name options CLI-style
  const text = err.message.startsWith(what) ? err.message.slice(what.length).replace(/^:?\s*/, "") : err.message;
  return `${f.label}: ${text}`;
}

async function submit(event) {
  event.preventDefault();
  message("");
  const problem = validate();
  if (problem) { message(problem); return; }
  const form = new FormData();
  if (state.contentFile) form.append("content", state.contentFile);
  else form.append("content_builtin", state.contentBuiltin);
  for (const f of state.styleFiles) form.append("style", f);
  for (const name of state.styleBuiltins) form.append("style_builtin", name);
  if (state.initJob) form.append("init_job", state.initJob);
  if (state.mask.painted) form.append("mask", await maskBlob(), "mask.png");
  form.append("params", JSON.stringify(params()));
  $("#start").disabled = true;
  try {
    const job = await api("/api/jobs", { method: "POST", body: form });
    const node = showJob(job);
    follow(job.id);
    node.scrollIntoView({ block: "nearest", behavior: "smooth" });
    node.focus({ preventScroll: true });
    say(job.position > 1 ? `Run queued, place ${job.position}` : "Run started");
  } catch (err) {
    message(err.field ? refused(err) : err.message);
  } finally {
    $("#start").disabled = false;
  }
}

// -- the run time estimate (the server's measured speed) -------------------------------------
// Before any run the server's start-up test run gives the speed; while it runs, the page
// asks again every few seconds. A run estimated over 10 minutes is said so before Start.
let estimateTimer = null;
function estimate(delay = 250) {
  clearTimeout(estimateTimer);
  estimateTimer = setTimeout(async () => {
    const box = $("#estimate");
    const size = Number($("#size") && $("#size").value), its = Number($("#iterations") && $("#iterations").value);
    box.classList.remove("long");
    if (!Number.isInteger(size) || !Number.isInteger(its) || size < 16 || its < 1) { box.textContent = ""; return; }
    const aspect = state.contentAspect || 0.75;
    try {
      const e = await api(`/api/estimate?size=${size}&iterations=${its}&aspect=${aspect.toFixed(3)}`);
      if (e.seconds == null) {
        box.textContent = e.measuring ? "measuring this server's speed…" : "time estimate after the first run";
        if (e.measuring) estimate(3000);
        return;
      }
      const basis = e.basis === "calibration" ? " (from a test run at start-up)" : "";
      box.textContent = `about ${fmtTime(e.seconds)} on this server${basis}`;
      if (e.seconds > LONG_RUN) {
        box.classList.add("long");
        box.textContent += ": over 10 minutes; a smaller size, fewer iterations or the fast preset is quicker";
      }
    } catch (err) { box.textContent = ""; }
  }, delay);
}

// -- painted regions ---------------------------------------------------------------------
function renderBrushes() {
  const box = $("#brushes");
  if (!box) return;
  box.replaceChildren();
  const list = styleList();
  const brushes = list.map((s, i) => ({ value: i + 1, label: `Style ${i + 1}`, colour: PALETTE[i % PALETTE.length] }));
  brushes.push({ value: "keep", label: "Keep photo", colour: KEEP });
  if (!brushes.some((b) => b.value === state.mask.brush)) state.mask.brush = 1;
  for (const b of brushes) {
    const btn = document.createElement("button");
    btn.type = "button";
    btn.dataset.brush = String(b.value);
    btn.setAttribute("aria-pressed", String(b.value === state.mask.brush));
    btn.innerHTML = `<span class="swatch" style="background:${b.colour}"></span>`;
    btn.append(b.label);
    btn.addEventListener("click", () => { state.mask.brush = b.value; renderBrushes(); if (!$("#mask-box").hidden) showBox(); });
    box.append(btn);
  }
}

function brushColour() {
  return state.mask.brush === "keep" ? KEEP : PALETTE[(state.mask.brush - 1) % PALETTE.length];
}

function setupPainter() {
  const canvas = $("#mask-canvas");
  const photo = $("#mask-photo");
  const ctx = canvas.getContext("2d");
  photo.addEventListener("load", () => {  // a new photo: a new, empty painting
    if (canvas.width === photo.naturalWidth && canvas.height === photo.naturalHeight) return;
    canvas.width = photo.naturalWidth;
    canvas.height = photo.naturalHeight;
    state.mask.painted = false;
  });
  let drawing = false;
  let last = null;
  const at = (e) => {
    const r = canvas.getBoundingClientRect();
    return [(e.clientX - r.left) * canvas.width / r.width, (e.clientY - r.top) * canvas.height / r.height];
  };
  const paint = (e) => {  // a round brush, joined from the last point
    const [x, y] = at(e);
    const scale = canvas.width / canvas.getBoundingClientRect().width;
    ctx.strokeStyle = ctx.fillStyle = brushColour();
    ctx.lineWidth = Number($("#brush-size").value) * scale;
    ctx.lineCap = "round";
    ctx.beginPath();
    const [x0, y0] = last || [x, y];
    ctx.moveTo(x0, y0);
    ctx.lineTo(x + 0.01, y);
    ctx.stroke();
    last = [x, y];
    state.mask.painted = true;
  };
  canvas.addEventListener("pointerdown", (e) => { drawing = true; last = null; canvas.setPointerCapture(e.pointerId); paint(e); });
  canvas.addEventListener("pointermove", (e) => { if (drawing) paint(e); });
  canvas.addEventListener("pointerup", () => { drawing = false; last = null; });
  $("#mask-clear").addEventListener("click", clearMask);
  canvas.addEventListener("keydown", boxKey);
  canvas.addEventListener("focus", () => { showBox(); });
  canvas.addEventListener("blur", () => { $("#mask-box").hidden = true; });
  $("#mask-file").addEventListener("change", (e) => {
    const [f] = images(Array.from(e.target.files), "content");
    e.target.value = "";
    if (f) loadMask(f);
  });
}

// The keyboard's brush: a box (in fractions of the photo) moved by the arrows, resized by
// Shift+arrows, painted by Enter or Space with the chosen brush.
const box = { x: 0.25, y: 0.25, w: 0.5, h: 0.5 };
function showBox() {
  const el = $("#mask-box");
  el.hidden = false;
  Object.assign(el.style, { left: `${box.x * 100}%`, top: `${box.y * 100}%`,
                            width: `${box.w * 100}%`, height: `${box.h * 100}%` });
  el.style.borderColor = brushColour();
}

function boxKey(e) {
  const d = 0.05;
  const moves = { ArrowLeft: [-d, 0], ArrowRight: [d, 0], ArrowUp: [0, -d], ArrowDown: [0, d] };
  if (e.key in moves) {
    e.preventDefault();
    const [dx, dy] = moves[e.key];
    if (e.shiftKey) {
      box.w = Math.min(1 - box.x, Math.max(d, box.w + dx));
      box.h = Math.min(1 - box.y, Math.max(d, box.h + dy));
    } else {
      box.x = Math.min(1 - box.w, Math.max(0, box.x + dx));
      box.y = Math.min(1 - box.h, Math.max(0, box.y + dy));
    }
    showBox();
    const pc = (v) => `${Math.round(v * 100)}%`;
    $("#mask-announce").textContent = `box at ${pc(box.x)} across, ${pc(box.y)} down, ${pc(box.w)} wide, ${pc(box.h)} high`;
  } else if (e.key === "Enter" || e.key === " ") {
    e.preventDefault();
    const canvas = $("#mask-canvas"), ctx = canvas.getContext("2d");
    ctx.fillStyle = brushColour();
    ctx.fillRect(Math.round(box.x * canvas.width), Math.round(box.y * canvas.height),
                 Math.round(box.w * canvas.width), Math.round(box.h * canvas.height));
    state.mask.painted = true;
    const brush = state.mask.brush === "keep" ? "keep the photo" : `style ${state.mask.brush}`;
    $("#mask-announce").textContent = `box painted: ${brush}`;
  }
}

// An uploaded mask: drawn over the photo's size; its colours go to the nearest brush.
function loadMask(file) {
  const img = new Image();
  img.onload = () => {
    const canvas = $("#mask-canvas"), ctx = canvas.getContext("2d");
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    ctx.imageSmoothingEnabled = false;  // no blended colours between regions
    ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
    state.mask.painted = true;
    URL.revokeObjectURL(img.src);
    $("#mask-announce").textContent = `mask ${file.name} loaded`;
    message("");
  };
  img.onerror = () => message(`${file.name}: the browser cannot read this image`);
  img.src = URL.createObjectURL(file);
}

// Paste an image: into the styles when the focus is in the Style section, into the
// painting when it is in the regions panel, else as the content photo.
function setupPaste() {
  document.addEventListener("paste", (e) => {
    const files = Array.from((e.clipboardData && e.clipboardData.files) || []);
    if (!files.length) return;  // text goes where text goes
    e.preventDefault();
    const where = document.activeElement;
    if (where && where.closest("#mask-panel")) {
      const [f] = images(files, "content");
      if (f) loadMask(f);
    } else if (where && where.closest("[data-drop='style']")) {
      addStyles(files);
      say("Pasted as a style");
    } else {
      setContent(files);
      say("Pasted as the content photo");
    }
  });
}

function clearMask() {
  const canvas = $("#mask-canvas");
  canvas.getContext("2d").clearRect(0, 0, canvas.width, canvas.height);
  state.mask.painted = false;
}

function regions() {
  const n = styleList().length;
  const parts = [];
  for (let i = 0; i < n; i++) parts.push(`${PALETTE[i % PALETTE.length]}=${i + 1}`);
  parts.push(`${KEEP}=content`);
  return parts.join(",");
}

// The painting as a mask: unpainted pixels take style 1, painted ones their brush's colour
// (hard edges: no antialiasing colours between two labels).
function maskBlob() {
  const src = $("#mask-canvas");
  const out = document.createElement("canvas");
  out.width = src.width;
  out.height = src.height;
  const octx = out.getContext("2d");
  const data = src.getContext("2d").getImageData(0, 0, src.width, src.height);
  const colours = [...styleList().map((_, i) => PALETTE[i % PALETTE.length]), KEEP].map((c) =>
    [1, 3, 5].map((k) => parseInt(c.slice(k, k + 2), 16)));
  const d = data.data;
  for (let p = 0; p < d.length; p += 4) {
    let best = colours[0];
    if (d[p + 3] >= 128) {
      let bestDist = Infinity;
      for (const c of colours) {
        const dist = (d[p] - c[0]) ** 2 + (d[p + 1] - c[1]) ** 2 + (d[p + 2] - c[2]) ** 2;
        if (dist < bestDist) { bestDist = dist; best = c; }
      }
    }
    d[p] = best[0]; d[p + 1] = best[1]; d[p + 2] = best[2]; d[p + 3] = 255;
  }
  octx.putImageData(data, 0, 0);
  return new Promise((resolve) => out.toBlob(resolve, "image/png"));
}

// -- the form survives a reload ---------------------------------------------------------------
function save() {
  if (!state.fields.length) return;
  const data = {
    values: formValues(state.fields, SLIDER),
    ratio: $("#ratio").value,
    contentBuiltin: state.contentBuiltin,
    styleBuiltins: state.styleBuiltins,
    weights: [...state.weights].filter(([k]) => k.startsWith("builtin:")),
  };
  try { localStorage.setItem(STORE, JSON.stringify(data)); } catch (e) { /* private mode */ }
}

function restore() {
  let data = null;
  try { data = JSON.parse(localStorage.getItem(STORE) || "null"); } catch (e) { data = null; }
  if (!data) {
    const preset = document.getElementById("preset");
    if (preset && preset.value) applyBundle(preset.value);  // a first visit
    return;
  }
  for (const [name, value] of Object.entries(data.values || {})) setValue(name, value);
  if (data.ratio) { $("#ratio").value = data.ratio; $("#ratio-label").textContent = ratioText(data.ratio); }
  if (data.contentBuiltin) state.contentBuiltin = data.contentBuiltin;
  if (Array.isArray(data.styleBuiltins)) state.styleBuiltins = data.styleBuiltins;
  for (const [k, v] of data.weights || []) state.weights.set(k, v);
}

// -- jobs -----------------------------------------------------------------------------------
function setInit(job) {
  state.initJob = job ? job.id : null;
  $("#init-job-badge").hidden = !job;
  const init = document.getElementById("init");
  if (init) init.disabled = Boolean(job);
  if (job) {
    $("#init-job-id").textContent = job.id.slice(0, 8);
    $("#init-job-thumb").src = job.result + "?t=" + Date.now();
  }
}

function card(id) {
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

function dropCard(id) {
  closeStream(id);
  const node = state.cards.get(id);
  if (node) node.remove();
  state.cards.delete(id);
  if (state.initJob === id) setInit(null);
  $("#no-jobs").hidden = state.cards.size > 0;
}

function downloadLink(node) {
  const job = node.job;
  if (!job || !job.result) return;
  const ext = $(".format", node).value;
  $(".download", node).href = ext === "png" ? job.result + "?download=1" : job.result.replace(/\.png$/, `.${ext}`);
  $(".download", node).textContent = `Download ${ext === "jpg" ? "JPEG" : ext.toUpperCase().replace("WEBP", "WebP")}`;
}

function stateText(job) {
  if (job.state === "queued" && job.position) return `queued · place ${job.position}`;
  if (job.state === "interrupted") return "interrupted (server stopped)";
  return job.state;
}

function showJob(job) {
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

function progress(node, step) {
  node.step = step;
  $(".bar", node).value = step.total ? step.done / step.total : 0;
  const eta = step.eta != null && state.online ? ` · ETA ${fmtTime(step.eta)}` : "";
  $(".progress-text", node).textContent =
    `iteration ${step.done}/${step.total} · loss ${Number(step.loss).toPrecision(4)}${eta}`;
}

// The loss curve on log axes: decades on the left, iterations along the bottom.
function plot(node) {
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
  let replayed = false;
  source.addEventListener("open", () => { connection(true); });
  source.addEventListener("step", (e) => {
    const step = JSON.parse(e.data);
    if (!replayed) { node.losses = []; replayed = true; }
    node.losses.push(step.loss);
    progress(node, step);
    plot(node);
  });
  source.addEventListener("preview", (e) => { $(".preview", node).src = JSON.parse(e.data).url; });
  source.addEventListener("state", (e) => {
    const s = JSON.parse(e.data);
    node.dataset.state = s.state;
    if (s.state !== "interrupted") node.dataset.continuable = "0";
    $(".state", node).textContent = stateText(s);
    if (s.state === "running") say("Run started");
  });
  source.addEventListener("failed", (e) => { $(".error", node).textContent = JSON.parse(e.data).error; });
  source.addEventListener("end", async () => {
    state.tick += 1;
    state.ends.set(id, state.tick);
    closeStream(id);
    try {
      const job = await api(`/api/jobs/${id}`);
      showJob(job);
      say(`Run ${job.state}${job.error ? ": " + job.error : ""}`);
      estimate();
    } catch (err) { /* removed meanwhile */ }
  });
  source.onerror = () => {
    // the server went away (the browser retries by itself) or the job is gone
    if (source.readyState === EventSource.CLOSED) {
      closeStream(id);
      api(`/api/jobs/${id}`).then((job) => { showJob(job); if (!ENDED.includes(job.state)) follow(id); })
        .catch(() => null);
    }
    checkServer();
  };
}

// -- the connection, and other tabs --------------------------------------------------------------
function connection(up) {
  if (up === state.online) return;
  state.online = up;
  $("#connection").hidden = up;
  for (const node of state.cards.values()) {
    node.classList.toggle("offline", !up);
    if (node.step && !ENDED.includes(node.dataset.state)) progress(node, node.step);  // no stale ETA
  }
  if (up) sync();
}

async function checkServer() {
  try {
    await api("/api/jobs");
    connection(true);
  } catch (err) {
    connection(false);
  }
}

// Every few seconds: jobs removed in another tab go, new ones come, and a lost server is noticed.
async function sync() {
  let jobs;
  const asked = state.tick;
  try { jobs = await api("/api/jobs"); } catch (err) { connection(false); return; }
  connection(true);
  const seen = new Set();
  for (const job of jobs.filter((j) => j.kind === "stylize")) {
    seen.add(job.id);
    // a list asked for before this job's stream ended says it runs: it is stale for this job
    if ((state.ends.get(job.id) || 0) > asked) continue;
    const node = state.cards.get(job.id);
    if (!node || !state.streams.has(job.id)) showJob(job);
    if (!ENDED.includes(job.state)) follow(job.id);
  }
  for (const id of [...state.cards.keys()]) if (!seen.has(id)) dropCard(id);
}

async function runAgain(job) {
  if (!job) return;
  for (const [name, value] of Object.entries(job.params)) {
    if (!SLIDER.has(name) && name !== "init" && name !== "seed") setValue(name, Array.isArray(value) ? value.join(",") : value);
  }
  if (job.progress && job.progress.seed != null) setValue("seed", job.progress.seed);
  const ratio = Math.log10(job.params.content_weight / job.params.style_weight);
  $("#ratio").value = ratio.toFixed(1);
  $("#ratio-label").textContent = ratioText(ratio);
  try {
    const blob = async (u) => new File([await (await fetch(u)).blob()], u.split("/").pop(), { type: "image/png" });
    state.contentFile = await blob(job.inputs.content);
    state.styleFiles = await Promise.all(job.inputs.styles.map(blob));
    state.styleBuiltins = [];
    renderChosen();
    message("");
    say("Settings and images of that run are in the form; press Start");
    $("#start").focus();
  } catch (err) { message("could not fetch that run's images"); }
}

function init() {
  $("#ratio-label").textContent = ratioText($("#ratio").value);
  $("#ratio").addEventListener("input", (e) => { $("#ratio-label").textContent = ratioText(e.target.value); markPreset(); save(); });
  $("#content-file").addEventListener("change", (e) => setContent(Array.from(e.target.files)));
  $("#style-file").addEventListener("change", (e) => { addStyles(Array.from(e.target.files)); e.target.value = ""; });
  $("#init-job-clear").addEventListener("click", () => setInit(null));
  for (const b of document.querySelectorAll("[data-preset]")) b.addEventListener("click", () => applyStrength(b.dataset.preset));
  $("#job-form").addEventListener("submit", submit);
  setupDrop();
  setupPaste();
  setupPainter();
  loadConfig().then(() => { restore(); return loadBuiltins(); })
    .then(() => { markPreset(); estimate(); return sync(); })
    .catch((err) => message(err.message));
  setInterval(sync, 4000);
}

init();
