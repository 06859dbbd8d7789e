// The page of `insvp serve`: pick a task, drop an image, see the top classes and the Grad-CAM of the first.
// Plain JavaScript against the server's own API; nothing is loaded from elsewhere.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { tasks: new Map(), file: null };

async function api(path, options) {
  const response = await fetch(path, { credentials: "same-origin", ...options });
  const body = await response.json().catch(() => ({ detail: response.statusText }));
  if (response.status === 401) {
    throw new Error("This server needs its token: open the address that insvp serve printed (ending in /?token=...).");
  }
  if (!response.ok) throw new Error(body.detail || response.statusText);
  return body;
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

function describe(task) {
  const backbone = task.backbone.shared
    ? `shares ${task.backbone.name} with ${task.backbone.shared_with.join(", ")}`
    : `its own ${task.backbone.name}`;
  return `${task.method}, ${task.classes.length} classes, ${task.extra_params.toLocaleString()} extra parameters; ` +
    backbone;
}

async function loadTasks() {
  const { tasks } = await api("/tasks");
  const select = $("task");
  for (const task of tasks) {
    state.tasks.set(task.name, task);
    select.add(new Option(task.name === task.method ? task.name : `${task.name} (${task.method})`, task.name));
  }
  // a backbone in memory: each group of tasks that share one, and each task with its own
  const backbones = new Set(tasks.map((t) => [t.name, ...t.backbone.shared_with].sort().join("\n"))).size;
  $("summary").textContent = `${tasks.length} task${tasks.length === 1 ? "" : "s"} on ${backbones} ` +
    `backbone${backbones === 1 ? "" : "s"} in memory`;
  showTask();
}

function showTask() {
  const task = state.tasks.get($("task").value);
  $("task-info").textContent = task ? describe(task) : "";
}

async function classify() {
  const file = state.file;
  const task = $("task").value;
  if (!file || !task) return;
  showError("");
  $("preview").src = URL.createObjectURL(file);
  $("file-name").textContent = file.name;
  $("classes").replaceChildren();
  $("cam-figure").hidden = true;
  $("result").hidden = false;
  $("result").dataset.state = "waiting";
  const params = new URLSearchParams({ top_k: $("top-k").value });
  if ($("explain").checked) params.set("explain", "gradcam");
  const form = new FormData();
  form.append("files", file, file.name);
  try {
    const result = await api(`/tasks/${encodeURIComponent(task)}/predict?${params}`, { method: "POST", body: form });
    const row = result.predictions[0];
    $("classes").replaceChildren(...row.classes.map((name, i) => classRow(name, row.probabilities[i])));
    if (row.gradcam) {
      $("cam").src = `data:image/png;base64,${row.gradcam.overlay_png}`;
      $("cam-caption").textContent = `Grad-CAM of ${row.gradcam.class}`;
      $("cam-figure").hidden = false;
    }
    $("result").dataset.state = "done";
  } catch (error) {
    $("result").hidden = true;
    showError(error.message);
  }
}

function classRow(name, probability) {
  const item = document.createElement("li");
  const label = document.createElement("span");
  label.className = "name";
  label.textContent = name;
  const bar = document.createElement("span");
  bar.className = "bar";
  bar.style.setProperty("--p", probability.toFixed(4));
  const value = document.createElement("span");
  value.className = "value";
  value.textContent = `${(100 * probability).toFixed(1)} %`;
  item.append(label, bar, value);
  return item;
}

function choose(files) {
  if (!files || !files.length) return;
  state.file = files[0];
  classify();
}

const drop = $("drop");
drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  choose(event.dataTransfer.files);
});
drop.addEventListener("keydown", (event) => { if (event.key === "Enter" || event.key === " ") $("file").click(); });
$("file").addEventListener("change", (event) => choose(event.target.files));
$("task").addEventListener("change", () => { showTask(); classify(); });
$("top-k").addEventListener("change", classify);
$("explain").addEventListener("change", classify);
loadTasks().catch((error) => { $("summary").textContent = ""; showError(error.message); });
