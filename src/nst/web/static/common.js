// Shared by the pages: DOM and API helpers, and forms built from option declarations.

export const $ = (sel, root = document) => root.querySelector(sel);

export function fmtTime(seconds) {
  if (seconds == null || !isFinite(seconds)) return "–";
  const s = Math.max(0, Math.round(seconds));
  const m = Math.floor(s / 60);
  return `${m}:${String(s % 60).padStart(2, "0")}`;
}

// A failed request throws an Error whose message is the server's one line; ``field``
// names the option at fault when the server says (a 422 of a form).
export async function api(path, options = {}) {
  const response = await fetch(path, options);
  if (response.status === 401) {  // the session ended (or the server's token changed)
    location.assign(`/signin?next=${encodeURIComponent(location.pathname)}`);
  }
  if (!response.ok) {
    let detail = response.statusText, field = null;
    try {
      const body = await response.json();
      detail = body.detail || detail;
      field = body.field || null;
    } catch (e) { /* not JSON */ }
    const error = new Error(typeof detail === "string" ? detail : JSON.stringify(detail));
    error.field = field;
    error.status = response.status;
    throw error;
  }
  return response.status === 204 ? null : response.json();
}

// A "Sign out" button in the header when this server asks for a token.
export async function showSignOut() {
  try {
    const session = await api("/api/session");
    $("#signout").hidden = !session.signin;
  } catch (e) { /* the page goes on without it */ }
}

// -- the form's checks: the same rules as the server's (from /api/config) --------------------
// Numbers as people read them: 2^63−1 for the seed's bound, thousands kept whole.
export function fmtBound(x) {
  if (Math.abs(x) >= 2 ** 53) return Math.abs(Math.abs(x) - 2 ** 63) <= 2 ** 11 ? "2^63−1" : x.toExponential(2);
  return String(x);
}

export function rangeText(field) {
  const unit = field.unit ? ` ${field.unit}` : "";
  const lo = field.min, hi = field.max;
  if (lo != null && hi != null) {
    return field.min_exclusive ? `more than ${fmtBound(lo)} and at most ${fmtBound(hi)}${unit}`
      : `from ${fmtBound(lo)} to ${fmtBound(hi)}${unit}`;
  }
  if (lo != null) return field.min_exclusive ? `more than ${fmtBound(lo)}${unit}` : `at least ${fmtBound(lo)}${unit}`;
  if (hi != null) return `at most ${fmtBound(hi)}${unit}`;
  return "";
}

// What is wrong with a control's value by its option's rules, or null.
export function problemOf(field, input) {
  if (input.disabled || field.choices || input.type === "checkbox") return null;
  const numeric = field.kind === "int" || field.kind === "float";
  if (!numeric) return null;  // text options (lists, regions): the server checks them
  if (input.validity && input.validity.badInput) return "not a number the form can read";
  const raw = input.value.trim();
  if (raw === "") return input.required ? "a value is needed" : null;
  if (field.kind === "int" && !/^[+-]?[0-9]+$/.test(raw)) return `a whole number is needed (got ${raw})`;
  const x = Number(raw);
  if (!Number.isFinite(x)) return `a finite number is needed (got ${raw})`;
  const low = field.min != null && (field.min_exclusive ? x <= field.min : x < field.min);
  const high = field.max != null && x > field.max;
  return low || high ? `must be ${rangeText(field)} (got ${raw})` : null;
}

// Mark one control as wrong: its own message shows next to it (and is read with it), its
// panel opens, and it gets the focus when asked (the first of several does).
export function markInvalid(input, text, focus = true) {
  const note = document.getElementById(`${input.id}-error`);
  input.setAttribute("aria-invalid", "true");
  if (note) {
    note.textContent = text;
    note.hidden = false;
    input.setAttribute("aria-errormessage", note.id);
  }
  const panel = input.closest("details");
  if (panel) panel.open = true;
  if (focus) input.focus();
}

export function clearInvalid(root = document) {
  for (const el of root.querySelectorAll("[aria-invalid]")) {
    el.removeAttribute("aria-invalid");
    el.removeAttribute("aria-errormessage");
  }
  for (const note of root.querySelectorAll(".field-error")) {
    note.textContent = "";
    note.hidden = true;
  }
}

// Every control of ``fields`` whose value breaks its option's rules: [field, input, problem].
export function problems(fields, skip = new Set()) {
  const out = [];
  for (const f of fields) {
    const input = document.getElementById(f.name);
    if (!input || skip.has(f.name)) continue;
    const problem = problemOf(f, input);
    if (problem) out.push([f, input, problem]);
  }
  return out;
}

// One control per declared option (its kind, range and choices come from the server's
// schema), placed in #main-options or #advanced-options by the declaration's "web".
export function control(field, defaults = {}) {
  let input;
  if (field.choices) {
    input = document.createElement("select");
    if (field.nullable) input.append(new Option("none", ""));
    for (const choice of field.choices) input.append(new Option(choice, choice));
  } else if (field.kind === "bool") {
    input = document.createElement("input");
    input.type = "checkbox";
  } else {
    input = document.createElement("input");
    const numeric = field.kind === "int" || field.kind === "float";
    input.type = numeric ? "number" : "text";
    if (numeric) {  // the spinner's bounds; problemOf() holds the rules
      if (field.min != null && !field.min_exclusive) input.min = field.min;
      if (field.max != null && Math.abs(field.max) < 2 ** 53) input.max = field.max;
      input.step = field.kind === "int" ? 1 : "any";
      input.inputMode = field.kind === "int" ? "numeric" : "decimal";
    }
    const empty = field.default == null || field.default === "" ||
      (Array.isArray(field.default) && field.default.length === 0);
    if (empty) input.placeholder = field.name === "seed" ? "random" : "default";
    else input.required = true;
  }
  input.id = field.name;
  input.name = field.name;
  const value = field.name in defaults ? defaults[field.name] : field.default;
  if (input.type === "checkbox") input.checked = Boolean(value);
  else input.value = value == null ? "" : String(value);
  const label = document.createElement("label");
  label.title = field.help;
  const note = document.createElement("span");  // its own message, when its value is wrong
  note.className = "field-error";
  note.id = `${field.name}-error`;
  note.hidden = true;
  label.append(field.label + " ", input, note);
  return label;
}

export function buildForm(fields, { skip = new Set(), defaults = {}, main = "#main-options",
                             advanced = "#advanced-options" } = {}) {
  for (const field of fields) {
    if (skip.has(field.name)) continue;
    $(field.web === "main" ? main : advanced).append(control(field, defaults));
  }
}

export function formValues(fields, skip = new Set()) {
  const p = {};
  for (const field of fields) {
    if (skip.has(field.name)) continue;
    const input = document.getElementById(field.name);
    if (!input) continue;
    if (input.type === "checkbox") p[field.name] = input.checked;
    else if (input.value === "" && !input.required) continue;
    else if (input.type === "number") {
      const x = Number(input.value);  // an integer past 2^53 goes as text, digit for digit
      p[field.name] = Number.isSafeInteger(x) || field.kind !== "int" ? x : input.value.trim();
    } else p[field.name] = input.value;
  }
  return p;
}
