// The API's documentation, drawn from /api/openapi.json by the page itself: nothing is
// fetched from outside (FastAPI's Swagger page would load its scripts from a CDN).
import { $, api } from "./common.js";

const METHODS = ["get", "post", "put", "patch", "delete"];

function el(tag, text, attrs = {}) {
  const node = document.createElement(tag);
  if (text != null) node.textContent = text;
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

// "string", "integer | null", "JobView", "array of Step" ... from a JSON schema
function typeOf(schema) {
  if (!schema) return "";
  if (schema.$ref) return schema.$ref.split("/").pop();
  if (schema.anyOf) return schema.anyOf.map(typeOf).join(" | ");
  if (schema.type === "array") return `array of ${typeOf(schema.items)}`;
  if (schema.enum) return schema.enum.map((v) => JSON.stringify(v)).join(" | ");
  return schema.format ? `${schema.type} (${schema.format})` : schema.type || "object";
}

function table(caption, head, rows) {
  const t = el("table");
  t.append(el("caption", caption));
  const tr = el("tr");
  for (const h of head) tr.append(el("th", h, { scope: "col" }));
  const thead = el("thead");
  thead.append(tr);
  t.append(thead);
  const body = el("tbody");
  for (const row of rows) {
    const r = el("tr");
    row.forEach((cell, i) => r.append(i === 0 ? el("th", cell, { scope: "row" }) : el("td", cell)));
    body.append(r);
  }
  t.append(body);
  const scroll = el("div", null, { class: "table-scroll" });  // narrow screens scroll it alone
  scroll.append(t);
  return scroll;
}

function properties(schema, spec) {
  const resolved = schema && schema.$ref ? spec.components.schemas[typeOf(schema)] : schema;
  const props = (resolved && resolved.properties) || {};
  const required = new Set((resolved && resolved.required) || []);
  return Object.entries(props).map(([name, p]) =>
    [name, typeOf(p), required.has(name) ? "yes" : "no", p.description || p.title || ""]);
}

function operation(path, method, op, spec) {
  const section = el("section", null, { class: "operation", id: `${method}-${path}`.replace(/[^\w-]/g, "_") });
  const h = el("h3");
  h.append(el("span", method.toUpperCase(), { class: `method ${method}` }), " ", el("code", path));
  section.append(h);
  if (op.summary) section.append(el("p", op.summary, { class: "summary" }));
  if (op.description && op.description !== op.summary) section.append(el("p", op.description));
  const params = (op.parameters || []).map((p) =>
    [p.name, `${typeOf(p.schema)} (${p.in})`, p.required ? "yes" : "no", p.description || ""]);
  if (params.length) section.append(table("Parameters", ["name", "type", "required", "meaning"], params));
  const body = op.requestBody && op.requestBody.content;
  if (body) {
    for (const [kind, content] of Object.entries(body)) {
      const rows = properties(content.schema, spec);
      section.append(rows.length
        ? table(`Body (${kind})`, ["field", "type", "required", "meaning"], rows)
        : el("p", `Body: ${kind}${content.schema ? ", " + typeOf(content.schema) : ""}`));
    }
  }
  const answers = Object.entries(op.responses || {}).map(([code, r]) => {
    const content = r.content ? Object.entries(r.content)[0] : null;
    const shape = content ? `${content[0]}${content[1].schema ? ": " + typeOf(content[1].schema) : ""}` : "";
    return [code, r.description || "", shape];
  });
  if (answers.length) section.append(table("Answers", ["status", "meaning", "content"], answers));
  return section;
}

function schemas(spec) {
  const section = el("section", null, { "aria-labelledby": "schemas-h" });
  section.append(el("h2", "Types", { id: "schemas-h" }));
  for (const [name, schema] of Object.entries((spec.components && spec.components.schemas) || {})) {
    const rows = properties(schema, spec);
    const part = el("section", null, { id: `schema-${name}` });
    part.append(el("h3", name));
    if (schema.description) part.append(el("p", schema.description));
    if (rows.length) part.append(table(`Fields of ${name}`, ["field", "type", "required", "meaning"], rows));
    section.append(part);
  }
  return section;
}

async function draw() {
  const spec = await api("/api/openapi.json");
  const main = $("#apidocs");
  main.replaceChildren();
  main.append(el("h2", `${spec.info.title} ${spec.info.version}`));
  if (spec.info.description) main.append(el("p", spec.info.description));
  const ops = el("section", null, { "aria-labelledby": "ops-h" });
  ops.append(el("h2", "Requests", { id: "ops-h" }));
  for (const [path, item] of Object.entries(spec.paths)) {
    for (const method of METHODS) if (item[method]) ops.append(operation(path, method, item[method], spec));
  }
  main.append(ops, schemas(spec));
}

draw().catch((err) => {
  $("#apidocs").replaceChildren(el("p", `The API's description could not be read: ${err.message}`, { role: "alert" }));
});
