// The settings form (built from /api/config), presets, checks, the estimate, Start.
import { state, STORE, ratioText, say, message, note, SLIDER, STRENGTH, LONG_RUN, ENDED } from "./state.js";
import { styleList, renderChosen, images } from "./images.js";
import { regions, maskBlob } from "./mask.js";
import { showJob, follow } from "./jobs.js";
import { $, fmtTime, api, problems, markInvalid, clearInvalid, buildForm, formValues } from "./common.js";

export async function loadConfig() {
  const schema = await api("/api/config");
  state.fields = schema.fields;
  state.limits = schema.limits;
  state.bundles = schema.presets || {};
  ENDED.splice(0, ENDED.length, ...schema.ended);
  buildForm(schema.fields, { skip: SLIDER });
  for (const f of schema.fields) {
    const input = document.getElementById(f.name);
    if (input) input.addEventListener("change", () => { save(); estimate(); showRatio(); });
  }
  const preset = document.getElementById("preset");
  if (preset) preset.addEventListener("change", () => { applyBundle(preset.value); save(); estimate(); });
  followImplied(schema.implied || {});
}

// A choice that brings other settings with it (style loss mrf: its style layers) sets them
// when they still hold what the previous choice brought (or their default).
function followImplied(implied) {
  for (const [name, byValue] of Object.entries(implied)) {
    const input = document.getElementById(name);
    if (!input) continue;
    let before = input.value;
    input.addEventListener("change", () => {
      const options = new Set([...Object.values(byValue).flatMap((b) => Object.keys(b))]);
      for (const option of options) {
        const was = byValue[before]?.[option] ?? field(option)?.default;
        const now = byValue[input.value]?.[option] ?? field(option)?.default;
        const target = document.getElementById(option);
        if (target && target.value === String(was)) setValue(option, now);
      }
      before = input.value;
      save();
    });
  }
}

// A preset (the server's named bundle of options) sets the form's controls to its values,
// its balance included (its weights, or the defaults); the first visit starts from the
// page's default preset.
export function applyBundle(name) {
  const bundle = state.bundles[name];
  if (!bundle) return;
  for (const [option, value] of Object.entries(bundle)) {
    const most = field(option)?.max;  // the declaration's bound or this server's cap
    setValue(option, typeof value === "number" && most != null ? Math.min(value, most) : value);
  }
  setRatio(balance(name));
}

// log10(α/β) of a preset (the chosen one by default): what Balanced stands for
export function balance(name = document.getElementById("preset")?.value) {
  const bundle = state.bundles[name] || {};
  const weight = (option) => Number(bundle[option] ?? field(option)?.default);
  return Math.log10(weight("content_weight") / weight("style_weight"));
}

// The slider moves in tenths of a decade; a strength notch stands for its exact balance
// (a preset's 780 is sent as 780, not as the tenth it shows).
const tenth = (x) => Math.round(x * 10) / 10;

// the strength button whose notch the slider is at (null: between them)
function notch() {
  const shown = Number($("#ratio").value), base = balance();
  return Object.keys(STRENGTH).find((name) => Math.abs(tenth(base + STRENGTH[name]) - shown) < 1e-6) ?? null;
}

export function ratio() {
  const at = notch();
  return at === null ? Number($("#ratio").value) : balance() + STRENGTH[at];
}

export function setRatio(value) {
  $("#ratio").value = tenth(value);
  showRatio();
}

export function showRatio() {
  $("#ratio-label").textContent = ratioText(ratio());
  markPreset();
}

// an option's field as /api/config declares it
export function field(name) {
  return state.fields.find((f) => f.name === name);
}

export function setValue(name, value) {
  const input = document.getElementById(name);
  if (!input) return;
  if (input.type === "checkbox") input.checked = Boolean(value);
  else input.value = value == null ? "" : String(value);
}

export function applyStrength(name) {
  setRatio(balance() + STRENGTH[name]);
  save();
}

function markPreset() {
  const at = notch();
  for (const b of document.querySelectorAll("[data-preset]")) b.setAttribute("aria-pressed", String(b.dataset.preset === at));
}

export function params() {
  const p = {
    content_weight: 1,
    style_weight: Number(Math.pow(10, -ratio()).toPrecision(4)),
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
// Every wrong value marked at its field at once (the focus on the first); the summary for
// the Start bar, or null when the form can be sent.
export function validate() {
  clearInvalid($("#job-form"));
  const found = problems(state.fields, SLIDER);
  found.forEach(([, input, problem], i) => markInvalid(input, problem, i === 0));
  if (found.length === 1) return `${found[0][0].label}: ${found[0][2]}`;
  if (found.length > 1) {
    return `${found.length} settings need a change: ${found.map(([f]) => f.label).join(", ")}`;
  }
  if (!styleList().length) return "pick or upload at least one style image";
  if (styleList().length > (state.limits.max_styles || 4)) return `at most ${state.limits.max_styles} style images`;
  return null;
}

// A server's refusal of one option, in the form's words, with that field marked.
export function refused(err) {
  const f = state.fields.find((x) => x.name === err.field);
  const input = f && document.getElementById(f.name);
  if (!input) return err.message;
  const what = f.name.replace(/_/g, "-");  // the server's messages name options CLI-style
  const text = err.message.startsWith(what) ? err.message.slice(what.length).replace(/^:?\s*/, "") : err.message;
  markInvalid(input, text);
  return `${f.label}: ${text}`;
}

export async function submit(event) {
  event.preventDefault();
  message("");
  note("");
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
// asks again every few seconds; after, every 20 s (the load and the queue change). A run
// estimated over 10 minutes is said so before Start.
let estimateTimer = null;
const ESTIMATE_AGAIN = 20000;  // ms
export function estimate(delay = 250) {
  clearTimeout(estimateTimer);
  estimateTimer = setTimeout(async () => {
    const box = $("#estimate");
    const size = Number($("#size") && $("#size").value), its = Number($("#iterations") && $("#iterations").value);
    box.classList.remove("long");
    // no request while a value breaks its rules (the server would refuse it: 422)
    const wrong = problems(state.fields.filter((f) => f.name === "size" || f.name === "iterations"));
    if (wrong.length || !Number.isInteger(size) || !Number.isInteger(its)) { box.textContent = ""; return; }
    const aspect = state.contentAspect || 0.75;
    try {
      const query = new URLSearchParams({ size, iterations: its, aspect: aspect.toFixed(3) });
      for (const name of ["preset", "style_loss"]) {  // what an iteration costs
        const input = $(`#${name}`);
        if (input && input.value) query.set(name, input.value);
      }
      const e = await api(`/api/estimate?${query}`);
      if (e.seconds == null) {
        box.textContent = e.measuring ? "measuring this server's speed…" : "time estimate after the first run";
        if (e.measuring) estimate(3000);
        return;
      }
      box.textContent = estimateText(e, $("#preset") && $("#preset").value === "fast");
      if (e.seconds > LONG_RUN) box.classList.add("long");
      estimate(ESTIMATE_AGAIN);  // the machine's load and the queue change
    } catch (err) { box.textContent = ""; }
  }, delay);
}

// "about 3:10" or "about 2:50 to 3:40" (once the recent runs vary), what measured it, a
// warning over 10 minutes (the fast preset advised only when another one is chosen), the
// machine's load now and the wait for the runs before it
export function estimateText(e, fast) {
  const range = e.low != null && e.high != null && fmtTime(e.low) !== fmtTime(e.high);
  let text = `about ${range ? `${fmtTime(e.low)} to ${fmtTime(e.high)}` : fmtTime(e.seconds)} on this server`;
  if (e.basis === "calibration") text += " (from a test run at start-up)";
  if (e.seconds > LONG_RUN) {
    text += fast ? ": over 10 minutes; a smaller size or fewer iterations is quicker"
      : ": over 10 minutes; a smaller size, fewer iterations or the fast preset is quicker";
  }
  if (e.slowdown >= 1.15) text += `; the machine is busy: runs take about ${e.slowdown.toFixed(1)}× as long now`;
  if (e.wait >= 1) text += `; it starts after about ${fmtTime(e.wait)} of runs queued before it`;
  return text;
}

// -- the form survives a reload ---------------------------------------------------------------
export function save() {
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

export function restore() {
  let data = null;
  try { data = JSON.parse(localStorage.getItem(STORE) || "null"); } catch (e) { data = null; }
  if (!data) {
    const preset = document.getElementById("preset");
    if (preset && preset.value) applyBundle(preset.value);  // a first visit
    return;
  }
  for (const [name, value] of Object.entries(data.values || {})) setValue(name, value);
  if (data.ratio) { $("#ratio").value = data.ratio; showRatio(); }
  if (data.contentBuiltin) state.contentBuiltin = data.contentBuiltin;
  if (Array.isArray(data.styleBuiltins)) state.styleBuiltins = data.styleBuiltins;
  for (const [k, v] of data.weights || []) state.weights.set(k, v);
}

export async function runAgain(job) {
  if (!job) return;
  for (const [name, value] of Object.entries(job.params)) {
    if (!SLIDER.has(name) && name !== "init" && name !== "seed") setValue(name, Array.isArray(value) ? value.join(",") : value);
  }
  if (job.progress && job.progress.seed != null) setValue("seed", job.progress.seed);
  setRatio(Math.log10(job.params.content_weight / job.params.style_weight));
  try {
    const blob = async (u) => new File([await (await fetch(u)).blob()], u.split("/").pop(), { type: "image/png" });
    state.contentFile = await blob(job.inputs.content);
    state.styleFiles = await Promise.all(job.inputs.styles.map(blob));
    state.styleBuiltins = [];
    renderChosen();
    message("");
    note(`The settings and images of run ${job.id.slice(0, 8)} are in the form: press Start to run it again.`);
    $("#start").focus();
  } catch (err) { message("could not fetch that run's images"); }
}

