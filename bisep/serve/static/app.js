// The page of `bisep serve`: choose a file (or an example), type prompts, submit to the JSON API, poll the job
// and show every output with its spectrogram. All text from the server or the user goes in as textContent.
"use strict";

const state = { file: null, example: null, limits: null, polling: null };
const $ = (id) => document.getElementById(id);

function element(tag, properties = {}, children = []) {
  const node = document.createElement(tag);
  Object.assign(node, properties);
  for (const child of children) node.append(child);
  return node;
}

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = !message;
}

function setBusy(busy, stage = "", progress = null) {
  $("separate-button").disabled = busy;
  $("status").hidden = !busy;
  $("stage").textContent = stage;
  const bar = $("progress");
  if (progress === null) bar.removeAttribute("value"); else bar.value = progress;
}

function addPrompt(text = "") {
  const input = element("input", { type: "text", name: "prompt", value: text, maxLength: 200,
                                   placeholder: "e.g. a dog barking", autocomplete: "off" });
  input.setAttribute("aria-label", "prompt");
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter") { event.preventDefault(); addPrompt().focus(); }
  });
  const remove = element("button", { type: "button", className: "remove", textContent: "✕", title: "remove" });
  const row = element("div", { className: "prompt-row" }, [input, remove]);
  remove.addEventListener("click", () => {
    if ($("prompt-list").children.length > 1) row.remove(); else input.value = "";
  });
  $("prompt-list").append(row);
  return input;
}

function setPrompts(prompts) {
  $("prompt-list").replaceChildren();
  for (const prompt of prompts.length ? prompts : [""]) addPrompt(prompt);
}

function readPrompts() {
  const values = [...document.querySelectorAll("#prompt-list input")].map((input) => input.value.trim());
  const filled = values.filter((value) => value);
  return filled.length ? filled : [""];  // all empty: let the server say why it refuses
}

function megabytes(bytes) { return (bytes / 1e6).toFixed(1) + " MB"; }

function chooseFile(file) {
  showError("");
  state.file = file;
  state.example = null;
  $("file-name").textContent = file ? `${file.name} (${megabytes(file.size)})` : "no file chosen";
  if (file && state.limits && file.size > state.limits.max_upload_mb * 1e6) {
    showError(`${file.name} is larger than the limit of ${state.limits.max_upload_mb} MB`);
  }
}

async function submit(event) {
  if (event) event.preventDefault();
  showError("");
  if (!state.file && !state.example) { showError("Choose an audio file (or an example below) first."); return; }
  if (state.file && state.limits && state.file.size > state.limits.max_upload_mb * 1e6) {
    showError(`${state.file.name} is larger than the limit of ${state.limits.max_upload_mb} MB`);
    return;
  }
  const form = new FormData();
  if (state.file) form.append("file", state.file, state.file.name); else form.append("example", state.example.name);
  for (const prompt of readPrompts()) form.append("prompts", prompt);
  setBusy(true, "uploading", null);
  let response;
  try {
    response = await fetch("/api/separate", { method: "POST", body: form });
  } catch (error) {
    setBusy(false);
    showError(`Could not reach the server (${error.message}).`);
    return;
  }
  const answer = await response.json().catch(() => ({ detail: `the server answered ${response.status}` }));
  if (!response.ok) { setBusy(false); showError(answer.detail); return; }
  follow(answer.id);
}

function follow(jobId) {
  clearTimeout(state.polling);
  const started = performance.now();
  const poll = async () => {
    let job;
    try {
      const response = await fetch(`/api/jobs/${encodeURIComponent(jobId)}`);
      job = await response.json();
      if (!response.ok) throw new Error(job.detail);
    } catch (error) {
      setBusy(false);
      showError(`Lost track of the separation (${error.message}).`);
      return;
    }
    const seconds = ((performance.now() - started) / 1000).toFixed(0);
    if (job.state === "queued") {
      setBusy(true, `waiting: ${job.position} separation(s) ahead (${seconds} s)`, null);
    } else if (job.state === "running") {
      setBusy(true, `${job.stage}: ${Math.round(job.progress * 100)} % (${seconds} s)`, job.progress);
    } else if (job.state === "failed") {
      setBusy(false);
      showError(job.error);
      return;
    } else {
      setBusy(false);
      showResult(job.result);
      return;
    }
    state.polling = setTimeout(poll, 400);
  };
  poll();
}

function audioPlayer(url, label) {
  const audio = element("audio", { controls: true, preload: "metadata", src: url });
  audio.setAttribute("aria-label", label);
  return audio;
}

function spectrogram(url, label) {
  return element("img", { src: url, alt: `spectrogram of ${label}` });
}

function trackCard(title, track, downloadName, className = "track") {
  const link = element("a", { href: track.audio_url, download: downloadName, textContent: "Download" });
  const card = element("article", { className }, [
    element("h3", { textContent: title }),
    element("div", { className: "row" }, [audioPlayer(track.audio_url, title), link]),
    spectrogram(track.spectrogram_url, title),
  ]);
  return card;
}

function showResult(result) {
  const input = result.input;
  const stem = input.name.replace(/\.[^.]*$/, "");
  const description = `Input: ${input.name} (${input.seconds.toFixed(1)} s, ${input.sample_rate} Hz, ` +
                      `${input.channels} channel${input.channels > 1 ? "s" : ""})`;
  $("input-track").replaceWith(Object.assign(trackCard(description, input, input.name, "track input"),
                                             { id: "input-track" }));
  const cards = result.tracks.map((track) => {
    const card = trackCard(`“${track.prompt}”`, track, `${stem}-${track.prompt}.flac`);
    if (track.reference) {
      card.append(element("div", { className: "reference" }, [
        element("h4", { textContent: "reference: the true source in the example" }),
        audioPlayer(track.reference.audio_url, `reference for ${track.prompt}`),
        spectrogram(track.reference.spectrogram_url, `the reference for ${track.prompt}`),
      ]));
    }
    return card;
  });
  cards.push(trackCard("Everything else (residual)", result.residual, `${stem}-residual.flac`));
  $("tracks").replaceChildren(...cards);
  for (const warning of result.warnings) showError(`Note: ${warning}`);
  $("results").hidden = false;
  $("results").scrollIntoView({ behavior: "smooth", block: "start" });
}

function exampleCard(example) {
  const button = element("button", { type: "button", textContent: "Separate this example" });
  button.addEventListener("click", () => {
    state.file = null;
    state.example = example;
    $("file-input").value = "";
    $("file-name").textContent = `example: ${example.caption}`;
    setPrompts(example.prompts);
    submit();
  });
  const references = element("details", {}, [
    element("summary", { textContent: "references (the true sources)" }),
    ...example.references.map((reference) => element("div", {}, [
      element("span", { textContent: reference.prompt }), audioPlayer(reference.audio_url, reference.prompt)])),
  ]);
  return element("article", { className: "card" }, [
    element("h3", { textContent: example.caption }),
    element("ul", { className: "chips" }, example.prompts.map((prompt) => element("li", { textContent: prompt }))),
    audioPlayer(example.mixture_url, `mixture: ${example.caption}`),
    references,
    button,
  ]);
}

async function loadServerInfo() {
  try {
    const [info, examples] = await Promise.all([
      fetch("/api/info").then((r) => r.json()), fetch("/api/examples").then((r) => r.json())]);
    state.limits = info;
    $("server-info").textContent = `model: ${info.model} · files up to ${info.max_upload_mb} MB and ` +
      `${Math.round(info.max_seconds)} s · up to ${info.max_prompts} prompts`;
    $("gallery").replaceChildren(...examples.map(exampleCard));
  } catch (error) {
    showError(`Could not load the server's settings (${error.message}).`);
  }
}

function setUpDropZone() {
  const zone = $("drop-zone");
  for (const name of ["dragenter", "dragover"]) {
    zone.addEventListener(name, (event) => { event.preventDefault(); zone.classList.add("dragging"); });
  }
  for (const name of ["dragleave", "drop"]) {
    zone.addEventListener(name, (event) => { event.preventDefault(); zone.classList.remove("dragging"); });
  }
  zone.addEventListener("drop", (event) => {
    const file = event.dataTransfer.files[0];
    if (file) chooseFile(file);
  });
  zone.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") { event.preventDefault(); $("file-input").click(); }
  });
  $("file-input").addEventListener("change", (event) => chooseFile(event.target.files[0] || null));
}

document.addEventListener("DOMContentLoaded", () => {
  setPrompts([]);
  setUpDropZone();
  $("add-prompt").addEventListener("click", () => addPrompt().focus());
  $("separate-form").addEventListener("submit", submit);
  loadServerInfo();
});
