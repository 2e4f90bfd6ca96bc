// The Explore page: pick an image and a target, see its saliency maps by the three
// backward rules, and run gradient ascent with live previews (a job, followed over SSE).
import { $, api, buildForm, formValues, showSignOut } from "./common.js";

const explore = { builtin: "builtin:chelsea", file: null, layers: [], neuron: null,
                  fields: [], stream: null, autoChannel: false };

function layerInfo() {
  return explore.layers.find((l) => l.name === $("#layer").value);
}

// an empty channel is "auto": the server picks the layer's strongest channel on the photo
function channelText() {
  return $("#channel").value.trim() === "" ? "auto" : $("#channel").value;
}

function targetText() {
  const at = explore.neuron && channelText() !== "auto" ? `@${explore.neuron[0]},${explore.neuron[1]}` : "";
  return `${$("#layer").value}:${channelText()}${at}`;
}

function showTarget() {
  $("#target-text").textContent = targetText();
  $("#neuron").textContent = explore.neuron
    ? `row ${explore.neuron[0] + 1}, column ${explore.neuron[1] + 1} of the ${$("#layer").value} map`
    : "the whole channel";
  $("#neuron-clear").hidden = !explore.neuron;
  $("#marker").hidden = !explore.neuron;
}

function choosePhoto(name, file) {
  explore.builtin = name;
  explore.file = file;
  $("#photo").src = file ? URL.createObjectURL(file) : `/api/builtins/${name.split(":")[1]}.png`;
  for (const b of document.querySelectorAll("#photo-gallery button")) {
    b.setAttribute("aria-pressed", String(!file && b.dataset.name === name));
  }
  explore.neuron = null;
  if (explore.autoChannel) $("#channel").value = "";  // the new photo's strongest, again
  showTarget();
}

// The neuron grid of the chosen layer on the image at the working size the server uses
// (the longest side scaled to the chosen size, then pooled by the layer's stride).
function grid() {
  const img = $("#photo");
  const size = Number($("#work-size").value);
  const k = size / Math.max(img.naturalWidth, img.naturalHeight);
  const wh = Math.max(1, Math.round(img.naturalHeight * k));
  const ww = Math.max(1, Math.round(img.naturalWidth * k));
  const stride = layerInfo().stride;
  return { rows: Math.max(1, Math.floor(wh / stride)), cols: Math.max(1, Math.floor(ww / stride)) };
}

function setNeuron(row, col) {
  const { rows, cols } = grid();
  explore.neuron = [Math.min(rows - 1, Math.max(0, row)), Math.min(cols - 1, Math.max(0, col))];
  const marker = $("#marker");  // the cell of that neuron, at least a visible ring
  marker.style.left = `${explore.neuron[1] / cols * 100}%`;
  marker.style.top = `${explore.neuron[0] / rows * 100}%`;
  marker.style.width = `${100 / cols}%`;
  marker.style.height = `${100 / rows}%`;
  showTarget();
  $("#pick-announce").textContent = `neuron: row ${explore.neuron[0] + 1} of ${rows}, column ${explore.neuron[1] + 1} of ${cols}`;
}

function pickNeuron(event) {
  const img = $("#photo");
  if (!img.naturalWidth) return;  // not loaded yet
  const rect = img.getBoundingClientRect();
  const { rows, cols } = grid();
  setNeuron(Math.floor((event.clientY - rect.top) / rect.height * rows),
            Math.floor((event.clientX - rect.left) / rect.width * cols));
}

// Arrow keys move the neuron (Shift: four cells); the first press starts at the centre.
function pickByKey(event) {
  if (!$("#photo").naturalWidth) return;
  const moves = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] };
  if (event.key in moves) {
    event.preventDefault();
    const { rows, cols } = grid();
    const step = event.shiftKey ? 4 : 1;
    if (!explore.neuron) { setNeuron(Math.floor(rows / 2), Math.floor(cols / 2)); return; }
    const [dr, dc] = moves[event.key];
    setNeuron(explore.neuron[0] + dr * step, explore.neuron[1] + dc * step);
  } else if (event.key === "Enter" || event.key === " ") {
    event.preventDefault();
    showSaliency();
  } else if (event.key === "Escape" && explore.neuron) {
    event.preventDefault();
    explore.neuron = null;
    showTarget();
    $("#pick-announce").textContent = "the whole channel";
  }
}

async function showSaliency() {
  if ($("#show").disabled) return;
  const form = new FormData();
  if (explore.file) form.append("image", explore.file);
  else form.append("image_builtin", explore.builtin);
  form.append("target", targetText());
  form.append("size", $("#work-size").value);
  $("#saliency-status").textContent = `computing the saliency of ${targetText()}…`;
  $("#show").disabled = true;
  try {
    const r = await api("/api/explain/saliency", { method: "POST", body: form });
    for (const fig of document.querySelectorAll("#maps figure")) {
      $("img", fig).src = r.maps[fig.dataset.method];
    }
    const fires = r.value > 0 ? "" : " (it does not fire on this image: pick another point or channel)";
    const chosen = channelText() === "auto" ? " (the strongest channel on this image)" : "";
    if (chosen) {  // the channel the server chose is filled in, so it can be explored further
      $("#channel").value = r.target.split(":")[1].split("@")[0];
      explore.autoChannel = true;
      showTarget();
    }
    $("#saliency-status").textContent =
      `${r.target}${chosen}: value ${Number(r.value).toPrecision(4)} at ${r.working_size[1]}×${r.working_size[0]} px${fires}`;
    $("#maps").dataset.shown = "1";
  } catch (err) {
    $("#saliency-status").textContent = err.message;
  } finally {
    $("#show").disabled = false;
  }
}

async function ascend(event) {
  event.preventDefault();
  if (!$("#ascent-form").reportValidity()) return;
  if (explore.stream) explore.stream.close();
  // the ascent image is square and new: the channel is the target, not a neuron of the photo
  if (channelText() === "auto") {
    $("#ascent-status").textContent = "give a channel, or show the saliency first: it fills in the strongest";
    return;
  }
  const channel = `${$("#layer").value}:${$("#channel").value}`;
  const body = JSON.stringify({ target: channel, params: formValues(explore.fields) });
  $("#ascend").disabled = true;
  try {
    const job = await api("/api/explain/visualize", {
      method: "POST", body, headers: { "Content-Type": "application/json" } });
    follow(job);
  } catch (err) {
    $("#ascent-status").textContent = err.message;
    $("#ascend").disabled = false;
  }
}

function follow(job) {
  const bar = $("#ascent-bar");
  bar.hidden = false;
  bar.value = 0;
  $("#ascent-status").textContent = `queued: ${job.params.target}`;
  const source = new EventSource(`/api/jobs/${job.id}/events`);
  explore.stream = source;
  source.addEventListener("step", (e) => {
    const s = JSON.parse(e.data);
    bar.value = s.fraction;
    $("#ascent-status").textContent =
      `${job.params.target}: step ${s.done}/${s.total}, activation ${Number(s.activation_loss).toPrecision(4)}`;
  });
  source.addEventListener("preview", (e) => {
    const img = $("#ascent-image");
    img.src = JSON.parse(e.data).url;
    img.hidden = false;
  });
  source.addEventListener("failed", (e) => {
    $("#ascent-status").textContent = JSON.parse(e.data).error;
  });
  source.addEventListener("end", async () => {
    source.close();
    $("#ascend").disabled = false;
    const done = await api(`/api/jobs/${job.id}`);
    if (done.result) {
      $("#ascent-image").src = `${done.result}?t=${Date.now()}`;
      $("#ascent-image").hidden = false;
    }
    $("#ascent-image").dataset.state = done.state;
    $("#ascent-status").textContent += ` — ${done.state}`;
  });
}

async function init() {
  const [builtins, info, schema] = await Promise.all([
    api("/api/builtins"), api("/api/explain/layers"), api("/api/explain/config")]);
  for (const item of builtins.filter((b) => b.kind === "photo")) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "thumb";
    b.dataset.name = item.name;
    b.setAttribute("aria-label", item.title);
    const img = document.createElement("img");
    img.src = item.url;
    img.alt = "";
    b.append(img);
    b.addEventListener("click", () => choosePhoto(item.name, null));
    $("#photo-gallery").append(b);
  }
  explore.layers = info.layers;
  for (const l of info.layers) $("#layer").append(new Option(`${l.name} (${l.channels})`, l.name));
  // the default target fires on the default image (the strongest channel, measured)
  const [layer, channel] = info.default_target.split(":");
  $("#layer").value = layer;
  $("#channel").value = channel === "auto" ? "" : channel;
  for (const s of [128, 192, 256, 384, 512]) {
    if (s <= info.max_size) $("#work-size").append(new Option(`${s} px`, s, s === 256, s === 256));
  }
  explore.fields = schema.fields;
  buildForm(schema.fields);
  const sync = () => {
    $("#channel").max = layerInfo().channels - 1;
    explore.neuron = null;
    showTarget();
  };
  $("#layer").addEventListener("change", sync);
  $("#work-size").addEventListener("change", () => { explore.neuron = null; showTarget(); });
  $("#channel").addEventListener("input", () => { explore.autoChannel = false; showTarget(); });
  $("#neuron-clear").addEventListener("click", () => { explore.neuron = null; showTarget(); });
  $("#photo").addEventListener("click", pickNeuron);
  $("#pick").addEventListener("keydown", pickByKey);
  $("#photo-file").addEventListener("change", (e) => {
    const f = e.target.files[0];
    if (f) choosePhoto(null, f);
  });
  $("#show").addEventListener("click", showSaliency);
  $("#ascent-form").addEventListener("submit", ascend);
  sync();
  showSignOut();
  choosePhoto("builtin:chelsea", null);
}

window.nstExplore = { grid };  // for tests and the browser's console
init().catch((err) => { $("#saliency-status").textContent = err.message; });
