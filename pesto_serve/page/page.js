// The try-it page of a PESTO service: a form made from /api/v1/describe and page/fields.json.
//
// Every string that comes from the service (titles, descriptions, field names, answers, error
// messages) is shown with textContent or an attribute, never as HTML. Requests go to this
// service only, with relative URLs, so the page also works behind a path-prefix proxy.
"use strict";

(function () {
  const API = "api/v1/";
  const PREVIEW_SIZE = 320;
  const SMALL_IMAGE = 128;
  const POLL_FIRST_MS = 200;
  const POLL_MAX_MS = 2000;
  const FINAL_STATES = new Set(["DONE", "ERROR", "FAILED", "CANCELLED", "CANCELED"]);
  const EXAMPLES = {
    polygon: '{"type": "Polygon", "coordinates": [[[0, 0], [10, 0], [10, 10], [0, 0]]]}',
    polygons: '[{"type": "Polygon", "coordinates": [[[0, 0], [10, 0], [10, 10], [0, 0]]]}]',
  };
  const IMAGE_SIGNATURES = [
    ["iVBORw0KGgo", "image/png"],
    ["/9j/", "image/jpeg"],
    ["R0lGOD", "image/gif"],
    ["UklGR", "image/webp"],
    ["Qk", "image/bmp"],
    ["SUkq", "image/tiff"],
    ["TU0AK", "image/tiff"],
  ];
  const SHOWN_BY_BROWSERS = new Set(["image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp"]);

  const state = {fields: [], outputs: {}, outputKinds: {}, job: null, busy: false, urls: []};

  // -- small helpers -------------------------------------------------------------------------
  function byId(id) {
    return document.getElementById(id);
  }

  function element(tag, attributes, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (name === "text") node.textContent = String(value);
      else if (name === "className") node.className = value;
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children) {
      if (child !== undefined && child !== null) node.append(child);
    }
    return node;
  }

  function svgElement(tag, attributes) {
    const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [name, value] of Object.entries(attributes || {})) node.setAttribute(name, String(value));
    return node;
  }

  function show(node, visible) {
    node.hidden = !visible;
  }

  function setStatus(text) {
    byId("page-status").textContent = text;
  }

  function formatBytes(count) {
    if (count < 1024) return `${count} B`;
    if (count < 1024 * 1024) return `${(count / 1024).toFixed(1)} KiB`;
    return `${(count / 1024 / 1024).toFixed(1)} MiB`;
  }

  // A path of this service from a URL the service answered (absolute URLs name the host the
  // service saw, which may differ from the one the browser reached behind a proxy).
  function servicePath(url) {
    const parsed = new URL(url, document.baseURI);
    const at = parsed.pathname.indexOf("/" + API);
    return at >= 0 ? parsed.pathname.slice(at + 1) + parsed.search : parsed.pathname + parsed.search;
  }

  // -- talking to the service ----------------------------------------------------------------
  class ServiceFailure extends Error {
    constructor(status, message, field) {
      super(message);
      this.status = status;
      this.field = field || null;
    }
  }

  async function failureOf(response) {
    const text = await response.text().catch(() => "");
    try {
      const error = JSON.parse(text).error;
      if (error && typeof error.message === "string") {
        return new ServiceFailure(response.status, error.message, error.field);
      }
    } catch (ignored) {
      // not the service's JSON error shape: shown as text below
    }
    const statusText = response.statusText ? ` ${response.statusText}` : "";
    const detail = text.trim().slice(0, 500);
    const hint = response.status === 413 ? "the inputs are larger than this service accepts; send smaller files. " : "";
    return new ServiceFailure(response.status, `${hint}HTTP ${response.status}${statusText}${detail ? ": " + detail : ""}`);
  }

  async function call(path, options) {
    let response;
    try {
      response = await fetch(path, Object.assign({headers: {Accept: "application/json"}, cache: "no-store"}, options));
    } catch (error) {
      throw new ServiceFailure(0, `the service did not answer (${error.message}); it may be restarting, try again`);
    }
    if (!response.ok) throw await failureOf(response);
    return response;
  }

  async function callJson(path, options) {
    return (await call(path, options)).json();
  }

  // -- schemas -------------------------------------------------------------------------------
  // A property with its `$ref` resolved; the property's own keys (description, default) win.
  function resolved(schema, definitions) {
    let merged = Object.assign({}, schema);
    const seen = new Set();
    while (typeof merged.$ref === "string" && merged.$ref.startsWith("#/definitions/")) {
      const name = merged.$ref.slice("#/definitions/".length);
      const definition = definitions[name];
      if (seen.has(name) || !definition) break;
      seen.add(name);
      const own = Object.assign({}, merged);
      delete own.$ref;
      merged = Object.assign({}, definition, own);
    }
    return merged;
  }

  // When the service gave no kind for a field (an older service), a guess from its schema.
  function guessedKind(schema) {
    const type = Array.isArray(schema.type) ? schema.type[0] : schema.type;
    return ["string", "number", "integer", "boolean"].includes(type) ? type : "json";
  }

  // -- the form ------------------------------------------------------------------------------
  function render(describe, kinds) {
    const title = describe.title || describe.name || "PESTO service";
    document.title = `${title} (PESTO service)`;
    byId("title").textContent = title;
    byId("version").textContent = describe.version ? `version ${describe.version}` : "";
    byId("mode").textContent = describe.asynchronous ? "· stateful: each run is a job" : "";
    byId("description").textContent = describe.description || "";

    const input = describe.input || {};
    const definitions = input.definitions || {};
    const required = new Set(input.required || []);
    const fields = byId("fields");
    Object.entries(input.properties || {}).forEach(([name, property], index) => {
      const schema = resolved(property, definitions);
      const kind = kinds.inputs[name] || guessedKind(schema);
      const field = makeField(name, schema, kind, required.has(name), index);
      state.fields.push(field);
      fields.append(field.node);
    });
    if (!state.fields.length) fields.append(element("p", {text: "This service takes no inputs."}));

    const output = describe.output || {};
    for (const [name, property] of Object.entries(output.properties || {})) {
      state.outputs[name] = resolved(property, output.definitions || {});
      state.outputKinds[name] = kinds.outputs[name] || guessedKind(state.outputs[name]);
    }
    state.asynchronous = Boolean(describe.asynchronous);
    show(byId("inputs"), true);
    setStatus("Fill in the inputs, then press Run.");
  }

  function makeField(name, schema, kind, required, index) {
    const id = `input-${index}`;
    const descriptionId = `${id}-description`;
    const errorId = `${id}-error`;
    const label = element("label", {for: id, className: "field-name"}, element("span", {text: name}));
    if (required) label.append(" ", element("span", {className: "required-mark", text: "required"}));
    const typeName = kind === "json" ? (schema.title || schema.type || "JSON") : kind;
    label.append(" ", element("span", {className: "field-type", text: `(${typeName})`}));
    const description = element("p", {id: descriptionId, className: "field-description", text: schema.description || ""});
    const error = element("p", {id: errorId, className: "field-error", hidden: true});
    const node = element("div", {className: `field field-${kind}`, "data-field": name}, label, description);
    const field = {name, schema, kind, required, node, error, id};

    if (kind === "image" || kind === "images") makeFilePicker(field);
    else if (kind === "number" || kind === "integer") makeNumber(field);
    else if (kind === "boolean") makeCheckbox(field);
    else if (kind === "string") makeText(field);
    else makeJsonEditor(field);

    const control = field.control;
    control.id = id;
    control.name = name;
    control.setAttribute("aria-describedby", `${descriptionId} ${errorId}`);
    if (required) {
      control.required = true;
      control.setAttribute("aria-required", "true");
    }
    control.addEventListener("input", () => clearFieldError(field));
    node.append(error);
    return field;
  }

  function makeFilePicker(field) {
    const multiple = field.kind === "images";
    field.control = element("input", {type: "file", accept: "image/*,.tif,.tiff", multiple});
    field.preview = element("div", {className: "previews", "aria-live": "polite"});
    field.node.append(field.control, field.preview);
    field.control.addEventListener("change", () => {
      clearFieldError(field);
      previewFiles(field);
    });
  }

  async function previewFiles(field) {
    const files = Array.from(field.control.files || []);
    const generation = (field.generation = (field.generation || 0) + 1);
    field.preview.replaceChildren();
    for (const file of files) {
      const caption = element("figcaption", {text: `${file.name}, ${formatBytes(file.size)}`});
      const figure = element("figure", {className: "preview"}, caption);
      field.preview.append(figure);
      let bitmap;
      try {
        // Decoded off the main thread: a large photo does not freeze the page.
        bitmap = await createImageBitmap(file);
      } catch (error) {
        caption.textContent += ": no preview (this browser cannot show the format; it is sent as is)";
        continue;
      }
      if (generation !== field.generation) {
        bitmap.close();
        return;
      }
      // Large photos shrink to PREVIEW_SIZE; tiny ones grow to SMALL_IMAGE, their pixels kept sharp.
      const longest = Math.max(bitmap.width, bitmap.height);
      const scale = Math.min(PREVIEW_SIZE / longest, Math.max(1, SMALL_IMAGE / longest));
      const canvas = element("canvas", {
        width: Math.max(1, Math.round(bitmap.width * scale)),
        height: Math.max(1, Math.round(bitmap.height * scale)),
        role: "img",
        "aria-label": `preview of ${file.name}`,
      });
      const context = canvas.getContext("2d");
      context.imageSmoothingEnabled = scale < 1;
      context.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
      caption.textContent = `${file.name}, ${bitmap.width} × ${bitmap.height}, ${formatBytes(file.size)}`;
      bitmap.close();
      figure.prepend(canvas);
    }
  }

  function makeNumber(field) {
    const schema = field.schema;
    const control = element("input", {type: "number", step: field.kind === "integer" ? "1" : "any",
      inputmode: field.kind === "integer" ? "numeric" : "decimal"});
    if (typeof schema.minimum === "number") control.min = schema.minimum;
    if (typeof schema.maximum === "number") control.max = schema.maximum;
    if (typeof schema.default === "number") control.value = String(schema.default);
    const bounds = [];
    if (typeof schema.minimum === "number") bounds.push(`at least ${schema.minimum}`);
    if (typeof schema.exclusiveMinimum === "number") bounds.push(`more than ${schema.exclusiveMinimum}`);
    if (typeof schema.maximum === "number") bounds.push(`at most ${schema.maximum}`);
    if (typeof schema.exclusiveMaximum === "number") bounds.push(`less than ${schema.exclusiveMaximum}`);
    if (bounds.length) field.node.append(element("p", {className: "field-bounds", text: bounds.join(", ")}));
    field.control = control;
    field.node.append(control);
  }

  function makeCheckbox(field) {
    field.control = element("input", {type: "checkbox"});
    field.control.checked = field.schema.default === true;
    // The checkbox goes before its label, as people expect.
    field.node.classList.add("inline");
    field.node.prepend(field.control);
  }

  function makeText(field) {
    const schema = field.schema;
    if (Array.isArray(schema.enum)) {
      const control = element("select");
      if (!field.required) control.append(element("option", {value: "", text: "(not sent)"}));
      for (const choice of schema.enum) control.append(element("option", {value: String(choice), text: String(choice)}));
      if (typeof schema.default === "string") control.value = schema.default;
      field.control = control;
    } else {
      field.control = element("input", {type: "text", autocomplete: "off", spellcheck: "false"});
      if (typeof schema.maxLength === "number") field.control.maxLength = schema.maxLength;
      if (typeof schema.default === "string") field.control.value = schema.default;
    }
    field.node.append(field.control);
  }

  function makeJsonEditor(field) {
    const schema = field.schema;
    const control = element("textarea", {rows: 5, spellcheck: "false", autocomplete: "off", className: "json"});
    control.placeholder = EXAMPLES[field.kind] || (expectedJsonType(field) === "array" ? "[]" : "{}");
    if (schema.default !== undefined) control.value = JSON.stringify(schema.default, null, 2);
    const check = element("p", {className: "json-check", "aria-live": "polite"});
    control.addEventListener("input", () => {
      const problem = jsonProblem(field, control.value);
      check.textContent = control.value.trim() ? (problem || "valid JSON") : "";
      check.classList.toggle("bad", Boolean(problem));
      control.setAttribute("aria-invalid", problem ? "true" : "false");
    });
    field.control = control;
    field.node.append(control, check);
  }

  function expectedJsonType(field) {
    if (field.kind === "polygon") return "object";
    if (field.kind === "polygons") return "array";
    const type = Array.isArray(field.schema.type) ? null : field.schema.type;
    return type === "object" || type === "array" ? type : null;
  }

  function jsonProblem(field, text) {
    if (!text.trim()) return null;
    let value;
    try {
      value = JSON.parse(text);
    } catch (error) {
      return `not valid JSON: ${error.message}`;
    }
    const expected = expectedJsonType(field);
    const actual = Array.isArray(value) ? "array" : value === null ? "null" : typeof value;
    if (expected && actual !== expected) return `must be a JSON ${expected}, this is a JSON ${actual}`;
    return null;
  }

  // -- reading the form ----------------------------------------------------------------------
  function readAsBase64(file) {
    return new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.onload = () => resolve(String(reader.result).slice(String(reader.result).indexOf(",") + 1));
      reader.onerror = () => reject(new Error(`cannot read ${file.name}: ${reader.error}`));
      reader.readAsDataURL(file);
    });
  }

  // The field's value for the request, `undefined` to leave it out; throws a message if wrong.
  async function valueOf(field) {
    const control = field.control;
    const kind = field.kind;
    if (kind === "image" || kind === "images") {
      const files = Array.from(control.files || []);
      if (!files.length) return missing(field, "choose a file");
      const encoded = await Promise.all(files.map(readAsBase64));
      return kind === "image" ? encoded[0] : encoded;
    }
    if (kind === "number" || kind === "integer") {
      if (control.validity.badInput) throw new Error("is not a number");
      if (!control.value.trim()) return missing(field, "enter a number");
      const value = Number(control.value);
      if (!Number.isFinite(value)) throw new Error("is not a number");
      if (kind === "integer" && !Number.isInteger(value)) throw new Error("must be a whole number");
      const schema = field.schema;
      if (typeof schema.minimum === "number" && value < schema.minimum) throw new Error(`must be at least ${schema.minimum}`);
      if (typeof schema.maximum === "number" && value > schema.maximum) throw new Error(`must be at most ${schema.maximum}`);
      if (typeof schema.exclusiveMinimum === "number" && value <= schema.exclusiveMinimum) throw new Error(`must be more than ${schema.exclusiveMinimum}`);
      if (typeof schema.exclusiveMaximum === "number" && value >= schema.exclusiveMaximum) throw new Error(`must be less than ${schema.exclusiveMaximum}`);
      return value;
    }
    if (kind === "boolean") return control.checked;
    if (kind === "string") {
      if (control.value === "") return missing(field, "enter a text");
      return control.value;
    }
    if (!control.value.trim()) return missing(field, "enter a JSON value");
    const problem = jsonProblem(field, control.value);
    if (problem) throw new Error(problem);
    return JSON.parse(control.value);
  }

  function missing(field, what) {
    if (field.required) throw new Error(`is required: ${what}`);
    return undefined;
  }

  async function readForm() {
    const body = {};
    const problems = [];
    for (const field of state.fields) {
      try {
        const value = await valueOf(field);
        if (value !== undefined) body[field.name] = value;
      } catch (error) {
        problems.push([field, error.message]);
      }
    }
    return {body, problems};
  }

  // -- errors --------------------------------------------------------------------------------
  function clearErrors() {
    const box = byId("error");
    box.replaceChildren();
    show(box, false);
    state.fields.forEach(clearFieldError);
  }

  function clearFieldError(field) {
    field.error.textContent = "";
    show(field.error, false);
    field.node.classList.remove("invalid");
    if (field.kind !== "json" && field.kind !== "polygon" && field.kind !== "polygons") {
      field.control.removeAttribute("aria-invalid");
    }
  }

  // The form field an error names (`image`, `areas[1].coordinates` names `areas`).
  function fieldNamed(path) {
    if (!path) return null;
    const exact = state.fields.find((field) => field.name === path);
    if (exact) return exact;
    const head = String(path).split(/[.[]/)[0];
    return state.fields.find((field) => field.name === head) || null;
  }

  function showFieldError(field, message) {
    field.error.textContent = message;
    show(field.error, true);
    field.node.classList.add("invalid");
    field.control.setAttribute("aria-invalid", "true");
  }

  function showError(title, problems) {
    const box = byId("error");
    const list = element("ul");
    for (const [field, message] of problems) {
      list.append(element("li", {}, field ? element("strong", {text: field.name}) : null, field ? `: ${message}` : message));
    }
    box.replaceChildren(element("p", {className: "error-title", text: title}), list);
    show(box, true);
  }

  function showFailure(failure) {
    const field = fieldNamed(failure.field);
    if (field) showFieldError(field, failure.message);
    const label = failure.field && !field ? `${failure.field}: ` : "";
    const status = failure.status ? `The service answered ${failure.status}` : "The run failed";
    showError(status, [[field, label + failure.message]]);
    (field ? field.control : byId("error")).focus();
  }

  // -- running -------------------------------------------------------------------------------
  async function run(event) {
    event.preventDefault();
    if (state.busy) return;
    clearErrors();
    setBusy(true);
    try {
      setStatus("Reading the inputs…");
      const {body, problems} = await readForm();
      if (problems.length) {
        problems.forEach(([field, message]) => showFieldError(field, message));
        showError("Some inputs need a fix before running", problems);
        problems[0][0].control.focus();
        setStatus("Not sent: fix the inputs marked below.");
        return;
      }
      clearOutputs();
      setStatus("Running…");
      const started = performance.now();
      const response = await call(API + "process", {
        method: "POST",
        headers: {"Content-Type": "application/json", Accept: "application/json"},
        body: JSON.stringify(body),
      });
      const answer = await response.json();
      if (response.status === 202 || (state.asynchronous && answer && answer.jobId)) {
        await followJob(answer);
      } else {
        showOutputs(answer, performance.now() - started);
        setStatus("Done.");
      }
    } catch (error) {
      const failure = error instanceof ServiceFailure ? error : new ServiceFailure(0, error.message);
      showFailure(failure);
      setStatus("The run failed: see the message below.");
    } finally {
      setBusy(false);
    }
  }

  function setBusy(busy) {
    state.busy = busy;
    const button = byId("run");
    button.disabled = busy;
    byId("inputs").setAttribute("aria-busy", busy ? "true" : "false");
  }

  // -- stateful jobs -------------------------------------------------------------------------
  // How far a job is, from 0 to 1, or null: the jobs API reports `progress` as a percentage;
  // an object with a fraction, a percentage or done/total is read too.
  function progressFraction(job) {
    const progress = job.progress;
    if (typeof progress === "number" && Number.isFinite(progress)) return progress / 100;
    if (progress && typeof progress === "object") {
      for (const key of ["fraction", "ratio"]) {
        if (typeof progress[key] === "number") return progress[key];
      }
      if (typeof progress.percent === "number") return progress.percent / 100;
      if (typeof progress.done === "number" && typeof progress.total === "number" && progress.total > 0) {
        return progress.done / progress.total;
      }
    }
    return null;
  }

  function showJob(job) {
    const status = typeof job.status === "string" ? job.status : "unknown";
    const fraction = progressFraction(job);
    const percent = fraction === null ? "" : `, ${Math.round(Math.min(1, Math.max(0, fraction)) * 100)} %`;
    const message = job.progress && typeof job.progress.message === "string" ? ` (${job.progress.message})` : "";
    const cancelling = job.cancelRequested && !FINAL_STATES.has(status.toUpperCase()) ? ", cancel requested" : "";
    byId("job-status").textContent = `Job ${state.job}: ${status}${percent}${message}${cancelling}`;
    byId("job-status").dataset.status = status;
    const bar = byId("job-progress");
    if (fraction !== null) {
      bar.value = Math.min(1, Math.max(0, fraction));
      bar.textContent = percent;
      show(bar, true);
    }
    return status;
  }

  async function followJob(submitted) {
    state.job = String(submitted.jobId);
    state.cancelled = false;
    const jobPath = `${API}jobs/${encodeURIComponent(state.job)}`;
    show(byId("job"), true);
    show(byId("job-progress"), false);
    show(byId("cancel"), true);
    const started = performance.now();
    let status = showJob(submitted);
    let wait = POLL_FIRST_MS;
    try {
      while (!FINAL_STATES.has(status.toUpperCase())) {
        setStatus(`Job ${state.job} is ${status}…`);
        await new Promise((resolve) => setTimeout(resolve, wait));
        wait = Math.min(POLL_MAX_MS, wait * 1.5);
        let job;
        try {
          job = await callJson(`${jobPath}/status`);
        } catch (error) {
          if (state.cancelled && error.status === 404) {
            byId("job-status").textContent = `Job ${state.job}: cancelled`;
            setStatus("The job was cancelled.");
            return;
          }
          throw error;
        }
        status = showJob(job);
        if (status.toUpperCase() === "ERROR" || status.toUpperCase() === "FAILED") {
          throw new ServiceFailure(0, `job ${state.job} failed: ${job.error || "no reason given"}`);
        }
      }
    } finally {
      show(byId("cancel"), false);
    }
    if (status.toUpperCase() !== "DONE") {
      setStatus(`The job ended as ${status}.`);
      return;
    }
    setStatus(`Job ${state.job} is done; reading its results…`);
    const links = await callJson(`${jobPath}/results`);
    const answer = {};
    for (const [name, link] of Object.entries(links)) {
      answer[name] = Array.isArray(link) ? await Promise.all(link.map(readResult)) : await readResult(link);
    }
    showOutputs(answer, performance.now() - started);
    setStatus(`Job ${state.job} is done.`);
  }

  // One result document: an image as an object URL, JSON as its value, text as a string.
  async function readResult(link) {
    const response = await call(servicePath(link), {headers: {Accept: "*/*"}});
    const type = (response.headers.get("Content-Type") || "").split(";")[0].trim();
    if (type.startsWith("image/")) {
      const url = URL.createObjectURL(await response.blob());
      state.urls.push(url);
      return {url, type};
    }
    if (type === "application/json" || type.endsWith("+json")) return response.json();
    return response.text();
  }

  async function cancelJob() {
    if (!state.job) return;
    const button = byId("cancel");
    button.disabled = true;
    try {
      await call(`${API}jobs/${encodeURIComponent(state.job)}`, {method: "DELETE"});
      state.cancelled = true;
      setStatus(`Cancelling job ${state.job}…`);
    } catch (error) {
      showFailure(error instanceof ServiceFailure ? error : new ServiceFailure(0, error.message));
    } finally {
      button.disabled = false;
    }
  }

  // -- outputs -------------------------------------------------------------------------------
  function clearOutputs() {
    state.urls.forEach((url) => URL.revokeObjectURL(url));
    state.urls = [];
    byId("results").replaceChildren();
    show(byId("outputs"), false);
    show(byId("job"), false);
  }

  function showOutputs(answer, milliseconds) {
    const results = byId("results");
    results.replaceChildren();
    const names = Object.keys(state.outputs).filter((name) => name in answer);
    for (const name of Object.keys(answer)) if (!names.includes(name)) names.push(name);
    for (const name of names) results.append(outputBlock(name, answer[name]));
    if (!names.length) results.append(element("p", {text: "The service answered no outputs."}));
    byId("outputs-time").textContent = `Answered in ${(milliseconds / 1000).toFixed(2)} s.`;
    show(byId("outputs"), true);
    byId("outputs-heading").focus();
  }

  function outputBlock(name, value) {
    const schema = state.outputs[name] || {};
    const kind = state.outputKinds[name] || (typeof value === "object" ? "json" : typeof value);
    const block = element("section", {className: `output output-${kind}`, "data-output": name},
      element("h3", {text: name}));
    if (schema.description) block.append(element("p", {className: "field-description", text: schema.description}));
    if (kind === "image") block.append(picture(name, value));
    else if (kind === "images") {
      const list = Array.isArray(value) ? value : [value];
      list.forEach((item, index) => block.append(picture(`${name}[${index}]`, item)));
    } else if (kind === "polygon" || kind === "polygons") {
      block.append(polygonDrawing(name, polygonsIn(value)), jsonBlock(value, true));
    } else if (value !== null && typeof value === "object") {
      const polygons = polygonsIn(value);
      if (polygons.length) block.append(polygonDrawing(name, polygons));
      block.append(jsonBlock(value, false));
    } else {
      block.append(element("output", {className: "value", text: String(value)}));
    }
    return block;
  }

  // JSON indented, with arrays of numbers or strings kept on one line (coordinates stay short).
  function prettyJson(value, indent = "") {
    if (value === null || typeof value !== "object") return JSON.stringify(value);
    const inner = indent + "  ";
    if (Array.isArray(value)) {
      if (!value.length) return "[]";
      if (value.every((item) => item === null || typeof item !== "object")) return `[${value.map((item) => JSON.stringify(item)).join(", ")}]`;
      if (value.every((item) => Array.isArray(item) && item.every((x) => typeof x === "number"))) {
        return `[${value.map((item) => prettyJson(item)).join(", ")}]`;
      }
      return `[\n${value.map((item) => inner + prettyJson(item, inner)).join(",\n")}\n${indent}]`;
    }
    const entries = Object.entries(value);
    if (!entries.length) return "{}";
    return `{\n${entries.map(([key, item]) => `${inner}${JSON.stringify(key)}: ${prettyJson(item, inner)}`).join(",\n")}\n${indent}}`;
  }

  function jsonBlock(value, folded) {
    const pre = element("pre", {className: "json", text: prettyJson(value)});
    return folded ? element("details", {}, element("summary", {text: "as JSON"}), pre) : pre;
  }

  function imageTypeOf(base64) {
    for (const [prefix, type] of IMAGE_SIGNATURES) if (base64.startsWith(prefix)) return type;
    return "application/octet-stream";
  }

  function base64Blob(base64, type) {
    const bytes = atob(base64);
    const array = new Uint8Array(bytes.length);
    for (let i = 0; i < bytes.length; i += 1) array[i] = bytes.charCodeAt(i);
    return new Blob([array], {type});
  }

  function picture(name, value) {
    let url;
    let type;
    if (value && typeof value === "object" && value.url) {
      ({url, type} = value);  // a stateful job's result, already an object URL
    } else if (typeof value === "string") {
      type = imageTypeOf(value);
      if (SHOWN_BY_BROWSERS.has(type)) {
        url = `data:${type};base64,${value}`;
      } else {
        url = URL.createObjectURL(base64Blob(value, type));
        state.urls.push(url);
      }
    } else {
      return element("pre", {className: "json", text: JSON.stringify(value, null, 2)});
    }
    if (!SHOWN_BY_BROWSERS.has(type)) {  // TIFF: offered as a file
      const link = element("a", {href: url, download: `${name}.${type.split("/")[1]}`, text: `download ${name} (${type})`});
      return element("p", {}, "This browser cannot show this image format: ", link);
    }
    const image = element("img", {src: url, alt: `${name} (output image)`, className: "output-image"});
    const caption = element("figcaption", {text: name});
    image.addEventListener("load", () => {
      caption.textContent = `${name}, ${image.naturalWidth} × ${image.naturalHeight}`;
      // A tiny picture is shown enlarged, its pixels kept sharp.
      if (Math.max(image.naturalWidth, image.naturalHeight) < SMALL_IMAGE) image.classList.add("small");
    });
    const download = element("a", {href: url, download: `${name}.${type.split("/")[1]}`, text: "download"});
    return element("figure", {className: "picture"}, image, caption, download);
  }

  // The GeoJSON polygons in a value: a Polygon, a MultiPolygon, a Feature, a FeatureCollection,
  // or an array of them; anything else holds none.
  function polygonsIn(value, depth = 0) {
    if (!value || typeof value !== "object" || depth > 3) return [];
    if (Array.isArray(value)) return value.flatMap((item) => polygonsIn(item, depth + 1));
    if (value.type === "Polygon" && Array.isArray(value.coordinates)) return [value.coordinates];
    if (value.type === "MultiPolygon" && Array.isArray(value.coordinates)) return value.coordinates;
    if (value.type === "Feature") return polygonsIn(value.geometry, depth + 1);
    if (value.type === "FeatureCollection") return polygonsIn(value.features, depth + 1);
    return [];
  }

  function polygonDrawing(name, polygons) {
    const rings = [];
    for (const coordinates of polygons) {
      if (!Array.isArray(coordinates)) continue;
      rings.push(coordinates.filter(Array.isArray).map((ring) => ring.filter((p) => Array.isArray(p) && p.length >= 2)
        .map((p) => [Number(p[0]), Number(p[1])]).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y))));
    }
    const points = rings.flat(2);
    if (!points.length) return element("p", {text: "No polygon to draw."});
    let [minX, minY, maxX, maxY] = [Infinity, Infinity, -Infinity, -Infinity];
    for (const [x, y] of points) {
      minX = Math.min(minX, x);
      minY = Math.min(minY, y);
      maxX = Math.max(maxX, x);
      maxY = Math.max(maxY, y);
    }
    const width = Math.max(maxX - minX, 1e-9);
    const height = Math.max(maxY - minY, 1e-9);
    const pad = Math.max(width, height) * 0.05;
    const svg = svgElement("svg", {
      viewBox: `${minX - pad} ${minY - pad} ${width + 2 * pad} ${height + 2 * pad}`,
      role: "img", "aria-label": `${name}: ${rings.length} polygon(s), drawn in their own coordinates (y down)`,
      class: "polygons", preserveAspectRatio: "xMidYMid meet",
    });
    rings.forEach((polygon, index) => {
      const d = polygon.map((ring) => ring.map(([x, y], i) => `${i ? "L" : "M"}${x} ${y}`).join(" ") + " Z").join(" ");
      const path = svgElement("path", {d, "fill-rule": "evenodd", "vector-effect": "non-scaling-stroke"});
      const title = svgElement("title", {});
      title.textContent = `${name} polygon ${index}`;
      path.append(title);
      svg.append(path);
    });
    return svg;
  }

  // -- start ---------------------------------------------------------------------------------
  async function start() {
    byId("inputs").addEventListener("submit", run);
    byId("cancel").addEventListener("click", cancelJob);
    try {
      const [describe, kinds] = await Promise.all([callJson(API + "describe"), callJson("page/fields.json")]);
      render(describe, kinds);
    } catch (error) {
      setStatus(`The service's description could not be read: ${error.message}`);
    }
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
