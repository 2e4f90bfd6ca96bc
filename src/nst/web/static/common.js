// Shared by the pages: DOM and API helpers, and forms built from option declarations.
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);

function fmtTime(seconds) {
  if (seconds == null || !isFinite(seconds)) return "–";
  const s = Math.max(0, Math.round(seconds));
  const m = Math.floor(s / 60);
  return `${m}:${String(s % 60).padStart(2, "0")}`;
}

async function api(path, options = {}) {
  const response = await fetch(path, options);
  if (!response.ok) {
    let detail = response.statusText;
    try { detail = (await response.json()).detail || detail; } catch (e) { /* not JSON */ }
    throw new Error(typeof detail === "string" ? detail : JSON.stringify(detail));
  }
  return response.status === 204 ? null : response.json();
}

// One control per declared option (its kind, range and choices come from the server's
// schema), placed in #main-options or #advanced-options by the declaration's "web".
function control(field, defaults = {}) {
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
    if (numeric) {
      if (field.min != null && !field.min_exclusive) input.min = field.min;
      if (field.max != null) input.max = field.max;
      input.step = field.kind === "int" ? 1 : "any";
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
  label.append(field.label + " ", input);
  return label;
}

function buildForm(fields, { skip = new Set(), defaults = {}, main = "#main-options",
                             advanced = "#advanced-options" } = {}) {
  for (const field of fields) {
    if (skip.has(field.name)) continue;
    $(field.web === "main" ? main : advanced).append(control(field, defaults));
  }
}

function formValues(fields, skip = new Set()) {
  const p = {};
  for (const field of fields) {
    if (skip.has(field.name)) continue;
    const input = document.getElementById(field.name);
    if (!input) continue;
    if (input.type === "checkbox") p[field.name] = input.checked;
    else if (input.value === "" && !input.required) continue;
    else if (input.type === "number") p[field.name] = Number(input.value);
    else p[field.name] = input.value;
  }
  return p;
}
