// The region painter: brushes, the keyboard box, an uploaded mask.
import { state, PALETTE, KEEP, message } from "./state.js";
import { styleList, images } from "./images.js";
import { $ } from "./common.js";

// -- painted regions ---------------------------------------------------------------------
export function renderBrushes() {
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

export function brushColour() {
  return state.mask.brush === "keep" ? KEEP : PALETTE[(state.mask.brush - 1) % PALETTE.length];
}

export function setupPainter() {
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
export const box = { x: 0.25, y: 0.25, w: 0.5, h: 0.5 };
export function showBox() {
  const el = $("#mask-box");
  el.hidden = false;
  Object.assign(el.style, { left: `${box.x * 100}%`, top: `${box.y * 100}%`,
                            width: `${box.w * 100}%`, height: `${box.h * 100}%` });
  el.style.borderColor = brushColour();
}

export function boxKey(e) {
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
export function loadMask(file) {
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

export function clearMask() {
  const canvas = $("#mask-canvas");
  canvas.getContext("2d").clearRect(0, 0, canvas.width, canvas.height);
  state.mask.painted = false;
}

export function regions() {
  const n = styleList().length;
  const parts = [];
  for (let i = 0; i < n; i++) parts.push(`${PALETTE[i % PALETTE.length]}=${i + 1}`);
  parts.push(`${KEEP}=content`);
  return parts.join(",");
}

// The painting as a mask: unpainted pixels take style 1, painted ones their brush's colour
// (hard edges: no antialiasing colours between two labels).
export function maskBlob() {
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

