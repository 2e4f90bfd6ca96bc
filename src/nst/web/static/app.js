// The page's entry: wires the parts together.
import { ratioText, message } from "./state.js";
import { loadBuiltins, setContent, addStyles, setupDrop, setupPaste, setInit } from "./images.js";
import { loadConfig, applyStrength, showRatio, submit, estimate, save, restore } from "./form.js";
import { setupPainter } from "./mask.js";
import { state } from "./state.js";
import { sync } from "./jobs.js";
import { $, showSignOut } from "./common.js";

export function init() {
  $("#ratio-label").textContent = ratioText($("#ratio").value);
  $("#ratio").addEventListener("input", () => { showRatio(); save(); });
  $("#content-file").addEventListener("change", (e) => setContent(Array.from(e.target.files)));
  $("#style-file").addEventListener("change", (e) => { addStyles(Array.from(e.target.files)); e.target.value = ""; });
  $("#init-job-clear").addEventListener("click", () => setInit(null));
  for (const b of document.querySelectorAll("[data-preset]")) b.addEventListener("click", () => applyStrength(b.dataset.preset));
  $("#job-form").addEventListener("submit", submit);
  setupDrop();
  setupPaste();
  setupPainter();
  loadConfig().then(() => { restore(); return loadBuiltins(); })
    .then(() => { showRatio(); estimate(); return sync(); })
    .catch((err) => message(err.message));
  setInterval(sync, 4000);
  showSignOut();
}

// the page's state and its list refresh, for tests and the browser's console
window.nstPage = { state, sync };
init();
