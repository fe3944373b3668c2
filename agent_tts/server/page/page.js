// The agent-tts page: speak a text over /v1/audio/stream and play it with Web Audio. Plain JavaScript, no build step.
"use strict";

const $ = (id) => document.getElementById(id);
// What the page has heard, for the curious (and for the browser test).
const stats = (window.agentTTS = {
  contextId: null, audioMessages: 0, samples: 0, firstAudioMs: null, done: false, cancelled: false,
  audioAfterDone: 0, stopRequested: false, errors: [],
});
let socket = null;
let audio = null;
let playAt = 0;
let sources = [];
let sentAt = 0;
let contexts = 0;

function apiKey() {
  return $("api-key").value.trim();
}

function setStatus(text, isError = false) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

async function loadVoices() {
  const headers = apiKey() ? { Authorization: `Bearer ${apiKey()}` } : {};
  const response = await fetch("/v1/audio/voices", { headers });
  if (!response.ok) {
    setStatus(`voices: ${response.status} (an API key needed?)`, true);
    return;
  }
  const select = $("voice");
  select.innerHTML = "";
  for (const voice of (await response.json()).voices) {
    const option = document.createElement("option");
    option.value = voice.id;
    option.textContent = voice.name === voice.id ? voice.id : `${voice.id} (${voice.name})`;
    select.appendChild(option);
  }
}

function openSocket() {
  if (socket && socket.readyState === WebSocket.OPEN) return Promise.resolve(socket);
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const query = apiKey() ? `?api_key=${encodeURIComponent(apiKey())}` : "";
  socket = new WebSocket(`${scheme}://${location.host}/v1/audio/stream${query}`);
  socket.onmessage = (event) => handle(JSON.parse(event.data));
  socket.onclose = () => setStatus("disconnected");
  return new Promise((resolve, reject) => {
    socket.onopen = () => resolve(socket);
    socket.onerror = () => reject(new Error("the WebSocket did not open"));
  });
}

function play(message) {
  const bytes = Uint8Array.from(atob(message.audio), (c) => c.charCodeAt(0));
  const ints = new Int16Array(bytes.buffer, 0, bytes.length >> 1);
  const buffer = audio.createBuffer(1, ints.length, message.sample_rate);
  const channel = buffer.getChannelData(0);
  for (let i = 0; i < ints.length; i++) channel[i] = ints[i] / 32768;
  const source = audio.createBufferSource();
  source.buffer = buffer;
  source.connect(audio.destination);
  playAt = Math.max(playAt, audio.currentTime + 0.05);
  source.start(playAt);
  playAt += buffer.duration;
  sources.push(source);
  source.onended = () => (sources = sources.filter((s) => s !== source));
  stats.samples += ints.length;
  stats.audioState = audio.state;
  $("audio-seconds").textContent = (stats.samples / message.sample_rate).toFixed(1);
}

function handle(message) {
  if (message.type === "error") {
    stats.errors.push(message.message);
    setStatus(`error: ${message.message}`, true);
    $("stop").disabled = true;
    return;
  }
  if (message.context_id !== stats.contextId) return; // an earlier, stopped context
  if (message.type === "audio") {
    if (stats.done) stats.audioAfterDone += 1;
    stats.audioMessages += 1;
    if (stats.firstAudioMs === null) {
      stats.firstAudioMs = performance.now() - sentAt;
      $("first-audio").textContent = `${stats.firstAudioMs.toFixed(0)} ms`;
    }
    if (!stats.done && !stats.stopRequested) play(message);
  } else if (message.type === "mark") {
    const unit = document.createElement("span");
    unit.className = "unit";
    unit.textContent = `${message.text} `;
    $("transcript").appendChild(unit);
  } else if (message.type === "done") {
    stats.done = true;
    stats.cancelled = message.cancelled;
    setStatus(message.cancelled ? "stopped" : `done (${message.audio_seconds.toFixed(1)} s)`);
    $("stop").disabled = true;
  }
}

async function speak() {
  audio = audio || new AudioContext();
  await audio.resume();
  stopPlayback();
  const ws = await openSocket();
  contexts += 1;
  Object.assign(stats, { contextId: `page-${contexts}`, audioMessages: 0, samples: 0, firstAudioMs: null,
                         done: false, cancelled: false, audioAfterDone: 0, stopRequested: false });
  $("first-audio").textContent = "-";
  $("transcript").textContent = "";
  setStatus("speaking");
  $("stop").disabled = false;
  sentAt = performance.now();
  const words = $("text").value.split(/(?<=\s)/);
  words.forEach((word, index) => {
    const message = { type: "text", context_id: stats.contextId, text: word };
    if (index === 0) message.voice = $("voice").value || undefined;
    ws.send(JSON.stringify(message));
  });
  ws.send(JSON.stringify({ type: "flush", context_id: stats.contextId }));
}

function stopPlayback() {
  for (const source of sources) source.stop();
  sources = [];
  playAt = 0;
}

function stop() {
  stats.stopRequested = true;
  if (socket && stats.contextId) socket.send(JSON.stringify({ type: "cancel", context_id: stats.contextId }));
  stopPlayback();
  setStatus("stopping");
}

$("speak").addEventListener("click", () => speak().catch((error) => setStatus(error.message, true)));
$("stop").addEventListener("click", stop);
$("api-key").addEventListener("change", loadVoices);
loadVoices();
