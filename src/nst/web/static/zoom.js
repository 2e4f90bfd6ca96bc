// The full-size view of a result: the picture in a dialog at any zoom, moved by wheel,
// pinch, drag or keys (+ − zoom, 0 shows 100%, F fits, arrows pan; Shift: further).
import { $ } from "./common.js";

const zoom = { scale: 1, x: 0, y: 0, pointers: new Map(), pinch: null, drag: null };
const ZOOM_MIN = 0.05, ZOOM_MAX = 32;

function zoomView() { return $("#zoom-view"); }
function zoomImg() { return $("#enlarge-img"); }

// Keep the picture in view: centred on an axis where it is smaller than the view, else
// no empty band on either side.
function zoomClamp() {
  const view = zoomView().getBoundingClientRect(), img = zoomImg();
  const w = img.naturalWidth * zoom.scale, h = img.naturalHeight * zoom.scale;
  zoom.x = w <= view.width ? (view.width - w) / 2 : Math.min(0, Math.max(view.width - w, zoom.x));
  zoom.y = h <= view.height ? (view.height - h) / 2 : Math.min(0, Math.max(view.height - h, zoom.y));
}

function zoomDraw() {
  zoomClamp();
  const img = zoomImg();
  img.style.transform = `translate(${zoom.x}px, ${zoom.y}px) scale(${zoom.scale})`;
  img.classList.toggle("pixels", zoom.scale >= 2);  // past 200%: the pixels, not a blur
  $("#zoom-level").textContent = `${Math.round(zoom.scale * 100)}%`;
  zoomView().dataset.scale = String(zoom.scale);
}

// Zoom to ``scale`` keeping the picture's point under (cx, cy) (view coordinates) in place.
function zoomTo(scale, cx, cy) {
  const view = zoomView().getBoundingClientRect();
  if (cx == null) { cx = view.width / 2; cy = view.height / 2; }
  const s = Math.min(ZOOM_MAX, Math.max(ZOOM_MIN, scale));
  zoom.x = cx - (cx - zoom.x) * (s / zoom.scale);
  zoom.y = cy - (cy - zoom.y) * (s / zoom.scale);
  zoom.scale = s;
  zoomDraw();
}

function zoomFit() {
  const view = zoomView().getBoundingClientRect(), img = zoomImg();
  if (!img.naturalWidth) return;
  zoom.scale = Math.min(view.width / img.naturalWidth, view.height / img.naturalHeight);
  zoomDraw();
}

function zoomPan(dx, dy) { zoom.x += dx; zoom.y += dy; zoomDraw(); }

function zoomKey(e) {
  const step = e.shiftKey ? 200 : 40;
  const keys = {
    "+": () => zoomTo(zoom.scale * 1.25), "=": () => zoomTo(zoom.scale * 1.25),
    "-": () => zoomTo(zoom.scale / 1.25), "_": () => zoomTo(zoom.scale / 1.25),
    "0": () => zoomTo(1), f: () => zoomFit(), F: () => zoomFit(),
    ArrowLeft: () => zoomPan(step, 0), ArrowRight: () => zoomPan(-step, 0),
    ArrowUp: () => zoomPan(0, step), ArrowDown: () => zoomPan(0, -step),
  };
  if (e.target.closest("button") && (e.key === "Enter" || e.key === " ")) return;
  if (keys[e.key] && !e.ctrlKey && !e.metaKey && !e.altKey) { e.preventDefault(); keys[e.key](); }
}

function zoomPoint(e) {
  const r = zoomView().getBoundingClientRect();
  return [e.clientX - r.left, e.clientY - r.top];
}

export function setupZoom() {
  const view = zoomView();
  $("#enlarge").addEventListener("keydown", zoomKey);
  view.addEventListener("wheel", (e) => {
    e.preventDefault();
    const [cx, cy] = zoomPoint(e);
    zoomTo(zoom.scale * Math.exp(-e.deltaY * 0.0015), cx, cy);
  }, { passive: false });
  // one pointer drags; two pinch (the scale follows their distance, around their middle)
  view.addEventListener("pointerdown", (e) => {
    try { view.setPointerCapture(e.pointerId); } catch (err) { /* a pointer already gone */ }
    zoom.pointers.set(e.pointerId, zoomPoint(e));
    zoom.pinch = null;
  });
  view.addEventListener("pointermove", (e) => {
    if (!zoom.pointers.has(e.pointerId)) return;
    const [px, py] = zoom.pointers.get(e.pointerId);
    const [x, y] = zoomPoint(e);
    zoom.pointers.set(e.pointerId, [x, y]);
    if (zoom.pointers.size === 1) { zoomPan(x - px, y - py); return; }
    const [a, b] = [...zoom.pointers.values()];
    const dist = Math.hypot(a[0] - b[0], a[1] - b[1]);
    const mid = [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2];
    if (zoom.pinch && zoom.pinch.dist > 0) {
      zoomPan(mid[0] - zoom.pinch.mid[0], mid[1] - zoom.pinch.mid[1]);
      zoomTo(zoom.scale * dist / zoom.pinch.dist, mid[0], mid[1]);
    }
    zoom.pinch = { dist, mid };
  });
  const lift = (e) => { zoom.pointers.delete(e.pointerId); zoom.pinch = null; };
  view.addEventListener("pointerup", lift);
  view.addEventListener("pointercancel", lift);
  for (const b of document.querySelectorAll("[data-zoom]")) {
    b.addEventListener("click", () => ({
      in: () => zoomTo(zoom.scale * 1.25), out: () => zoomTo(zoom.scale / 1.25),
      fit: zoomFit, actual: () => zoomTo(1),
    })[b.dataset.zoom]());
  }
  window.addEventListener("resize", () => { if ($("#enlarge").open) zoomDraw(); });
}

// Open the dialog on ``url``: fitted to the window (small results are shown larger; 0 gives
// their real size), the focus on the picture so the keys work at once.
export function openZoom(url, label) {
  const img = zoomImg();
  $("#enlarge-title").textContent = label;
  img.alt = label;
  $("#enlarge").showModal();
  zoomView().focus();
  const ready = () => { zoom.x = 0; zoom.y = 0; zoomFit(); zoomView().dataset.ready = "1"; };
  delete zoomView().dataset.ready;
  if (img.getAttribute("src") === url && img.complete && img.naturalWidth) ready();
  else { img.onload = ready; img.src = url; }
}

setupZoom();
