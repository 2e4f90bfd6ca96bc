// Choosing the images: built-ins, files, drops, pastes, an earlier result as the start.
import { state, say, message, note } from "./state.js";
import { estimate, save } from "./form.js";
import { renderBrushes, loadMask, clearMask } from "./mask.js";

import { $, api } from "./common.js";

export function builtinUrl(name) { return `/api/builtins/${name.split(":")[1]}.png`; }
export function builtinThumb(name) { return state.thumbs.get(name) || builtinUrl(name); }

// -- inputs ---------------------------------------------------------------------------------
// Styles are sent uploads first, then built-ins: the blend weights follow that order.
export function styleList() {
  return [
    ...state.styleFiles.map((f, i) => ({ key: `file:${i}:${f.name}`, label: f.name, file: f })),
    ...state.styleBuiltins.map((n) => ({ key: n, label: n.split(":")[1], builtin: n })),
  ];
}

export function thumb(src, alt) {
  const img = document.createElement("img");
  img.src = src;
  img.alt = alt;
  return img;
}

export function renderChosen() {
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

export async function loadBuiltins() {
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

export function images(files, role) {
  const ok = [];
  for (const f of files) {
    if (f.type && f.type.startsWith("image/")) ok.push(f);
    else message(`${f.name} is not an image (${f.type || "unknown type"}); pick a PNG, JPEG or WebP`);
  }
  if (ok.length) message("");
  return role === "content" ? ok.slice(0, 1) : ok;
}

export function setContent(files) {
  const [f] = images(files, "content");
  if (f) { state.contentFile = f; clearMask(); renderChosen(); }
}

export function addStyles(files) {
  // uploaded paintings replace the built-in ones chosen (click those again to blend them
  // in), and the page says so
  const ok = images(files, "style");
  if (!ok.length) return;
  const dropped = state.styleBuiltins.map((b) => b.replace(/^builtin:/, ""));
  state.styleFiles.push(...ok);
  state.styleBuiltins = [];
  renderChosen();
  if (dropped.length) {
    note(`Your painting replaces the built-in ${dropped.join(" and ")}; click ${dropped.length > 1 ? "them" : "it"} to blend ${dropped.length > 1 ? "them" : "it"} in.`);
  }
}

// Drag and drop: onto the content or the style section; a file dropped anywhere else is
// ignored instead of replacing the page.
export function setupDrop() {
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

// Paste an image: into the styles when the focus is in the Style section, into the
// painting when it is in the regions panel, else as the content photo.
export function setupPaste() {
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

// -- jobs -----------------------------------------------------------------------------------
export function setInit(job) {
  state.initJob = job ? job.id : null;
  $("#init-job-badge").hidden = !job;
  const init = document.getElementById("init");
  if (init) init.disabled = Boolean(job);
  if (job) {
    $("#init-job-id").textContent = job.id.slice(0, 8);
    $("#init-job-thumb").src = job.result + "?t=" + Date.now();
  }
}

