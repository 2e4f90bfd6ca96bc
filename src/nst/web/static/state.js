// The page's state and the few constants its parts share.
import { $ } from "./common.js";

export const state = {
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
  followed: new Map(),       // job id -> the first record still wanted (one stream for all)
  stream: null,              // the EventSource carrying them
  reopening: false,          // a new stream is due at the end of this task
  ends: new Map(),           // job id -> the tick at which its stream said "end"
  tick: 0,                   // counts stream ends, so a job list read before one is known stale
  online: true,
  mask: { painted: false, brush: 1 },
  thumbs: new Map(),         // built-in name -> its inlined thumbnail (a data URL)
};
export const STORE = "nst-form-v1";
export const PALETTE = ["#ff0000", "#0000ff", "#ffff00", "#ff00ff", "#00ffff"];
export const KEEP = "#00ff00";

export function ratioText(value) {
  return `α/β = ${Math.pow(10, Number(value)).toExponential(1)}`;
}

export function say(text) { $("#announce").textContent = text; }
export function message(text) { $("#message").textContent = text || ""; }
// what the page did on its own that the person should see (shown by Start, and read out)
export function note(text) { $("#note").textContent = text || ""; }
// -- the settings form, built from the option declarations (/api/config) ----------------------
// content_weight and style_weight are set by the balance slider (alpha/beta); style_blend by
// the per-style sliders; every other option a page may set gets a control by its kind,
// range and choices.
export const SLIDER = new Set(["content_weight", "style_weight", "style_blend"]);
// The strength buttons set the balance only: decades of alpha/beta from the chosen preset's
// own (Balanced); time is the preset's and the size's business.
export const STRENGTH = { subtle: 1, balanced: 0, strong: -1 };
// the states a job ends in, as the server says (/api/config)
export const ENDED = [];
export const LONG_RUN = 600;  // seconds: an estimate over this is said before Start

