// The voice page: one LayercodeClient from the pinned @layercode/js-sdk (served by this Worker,
// never from a CDN), a live transcript, the call controls and problems in plain words.
// No framework and no inline script: the Worker's Content-Security-Policy allows neither.
import LayercodeClient from "./vendor/layercode-js-sdk.esm.js";
import { Transcript } from "./transcript.js";

// Rendered into <body data-…> by the Worker from its settings.
const settings = {
  agentId: document.body.dataset.agentId || "",
  local: document.body.dataset.mode === "local",
  socketUrl: document.body.dataset.socketUrl || "",
};

const byId = (id) => document.getElementById(id);
const ui = {
  call: byId("call"),
  mute: byId("mute"),
  fresh: byId("new-conversation"),
  status: byId("status"),
  problem: byId("problem"),
  withoutMic: byId("call-without-mic"),
  callerLevel: byId("caller-level"),
  agentLevel: byId("agent-level"),
  form: byId("say"),
  message: byId("message"),
  send: byId("send"),
  localNote: byId("local-note"),
};

// The conversation survives a reload of this tab (sessionStorage), so the next call resumes it;
// it is gone when the tab closes, so a shared computer does not keep anyone's transcript.
const CONVERSATION_KEY = "voice-page.conversation-id";
const TRANSCRIPT_KEY = "voice-page.transcript";
const store = {
  get(key) {
    try {
      return window.sessionStorage.getItem(key);
    } catch {
      return null;
    }
  },
  set(key, value) {
    try {
      if (value == null) window.sessionStorage.removeItem(key);
      else window.sessionStorage.setItem(key, value);
    } catch {
      // Storage refused (private mode, quota): the page works, it just cannot resume.
    }
  },
};

const transcript = new Transcript(byId("transcript"), (rows) =>
  store.set(TRANSCRIPT_KEY, JSON.stringify(rows)),
);

/** A problem already in plain words, shown as it is. */
class CallProblem extends Error {}

const call = {
  client: null,
  connected: false,
  /** Who ended the call on purpose: "caller" or "agent"; null while it runs. */
  ending: null,
  /** Set when the SDK reports status "error": "failed" before the socket opened, else "dropped". */
  failure: null,
  microphone: true,
  muted: false,
  agentSpeaking: false,
};

// ---------------------------------------------------------------------------------------------
// Starting and ending a call

async function startCall(microphone) {
  if (call.client) return;
  showProblem(null);
  Object.assign(call, { connected: false, ending: null, failure: null, microphone, muted: false });
  hangUp.reset();
  const client = new LayercodeClient({
    agentId: settings.agentId,
    authorizeSessionEndpoint: "/authorize",
    authorizeSessionRequest: authorize,
    conversationId: store.get(CONVERSATION_KEY),
    metadata: {},
    audioInput: microphone,
    audioOutput: true,
    // The stand-in has no speech recognition, so no voice-activity model is loaded locally.
    enableVAD: !settings.local,
    onStatusChange: (status) => current(client) && onStatus(client, status),
    // A call ended while it was still connecting must not come back to life.
    onConnect: ({ conversationId }) =>
      current(client) ? onConnect(conversationId) : client.disconnect(),
    onDisconnect: () => current(client) && onDisconnect(),
    // Errors are shown even when they arrive after the client was given up on.
    onError: (error) => onError(error),
    onMessage: (message) => current(client) && onMessage(message),
    onDataMessage: (message) => current(client) && onDataMessage(message),
    onUserAmplitudeChange: (level) => current(client) && levels.set("caller", level),
    onAgentAmplitudeChange: (level) => current(client) && levels.set("agent", level),
    onAgentSpeakingChange: (speaking) => current(client) && onAgentSpeaking(speaking),
    onMuteStateChange: (muted) => current(client) && onMuted(muted),
  });
  // The one place the SDK's socket is redirected: only when the Worker says it runs locally,
  // and then to the local Layercode stand-in it names. On Layercode the SDK keeps its default.
  if (settings.socketUrl) client._websocketUrl = settings.socketUrl;
  call.client = client;
  render();
  await client.connect();
}

const current = (client) => call.client === client;

async function endCall(who) {
  const client = call.client;
  if (!client) return;
  call.ending = who;
  hangUp.reset();
  await client.disconnect();
}

/** The SDK's authorize request, so that the Worker's `{"error": …}` reaches the caller. */
async function authorize({ url, body }) {
  let response;
  try {
    response = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
  } catch {
    throw new CallProblem(
      "The call could not start: this page could not reach its server. Check your connection and try again.",
    );
  }
  if (!response.ok) {
    let detail = "";
    try {
      detail = String((await response.json()).error || "");
    } catch {
      // Not JSON: the status says enough.
    }
    throw new CallProblem(authorizeProblem(response.status, detail, Boolean(body.conversation_id)));
  }
  return response;
}

function authorizeProblem(status, detail, resuming) {
  const said = detail ? ` (${detail})` : "";
  let text;
  if (status === 402) {
    text = `The call could not start: the voice service account has run out of credit${said}.`;
  } else if (status === 502 || status === 503 || status === 504) {
    text = `The call could not start: the voice service did not answer${said}. Try again in a moment.`;
  } else if (status === 500 && detail.startsWith("server is missing the setting")) {
    text = `The call could not start: this server is not set up for calls yet${said}.`;
  } else if (status === 403) {
    text = `The call could not start: this server refused it${said}.`;
  } else {
    text = `The call could not start${said}.`;
  }
  if (resuming && status >= 400 && status < 500) {
    text += " Choose New conversation to start afresh.";
  }
  return text;
}

// ---------------------------------------------------------------------------------------------
// What the SDK reports

function onStatus(client, status) {
  if (status === "error") {
    // The SDK gives up on this connection; let the caller start again.
    call.failure = call.connected ? "dropped" : "failed";
    call.client = null;
    call.connected = false;
    levels.reset();
    render();
    // After the SDK's own handler has finished: release the microphone and the audio.
    setTimeout(() => client.disconnect().catch(() => {}), 0);
    return;
  }
  render();
}

function onConnect(conversationId) {
  call.connected = true;
  if (conversationId) store.set(CONVERSATION_KEY, conversationId);
  render();
  ui.message.focus();
}

function onDisconnect() {
  const wasConnected = call.connected;
  call.client = null;
  call.connected = false;
  call.agentSpeaking = false;
  hangUp.reset();
  levels.reset();
  if (call.ending === "caller") {
    transcript.note("You ended the call.");
  } else if (call.ending === "agent") {
    transcript.note("The agent ended the call.");
  } else if (wasConnected) {
    showProblem(
      "The connection to the voice service dropped. Start the call again to carry on the same conversation.",
    );
  }
  render();
}

function onError(error) {
  const { text, offerWithoutMic } = describe(error);
  showProblem(text, offerWithoutMic);
}

function describe(error) {
  if (error instanceof CallProblem) return { text: error.message, offerWithoutMic: false };
  const name = error && error.name ? error.name : "";
  const message = error && error.message ? String(error.message) : String(error);
  // The SDK's own words for a refused microphone (its spelling).
  if (
    message === "User has denined audio device permissions" ||
    ["NotAllowedError", "SecurityError", "PermissionDeniedError"].includes(name)
  ) {
    return {
      text: "The microphone is blocked for this page. Allow it in your browser's site settings and start the call again, or start without it and type.",
      offerWithoutMic: true,
    };
  }
  if (["NotFoundError", "NotReadableError", "OverconstrainedError"].includes(name)) {
    return {
      text: "No working microphone was found. Connect one and start the call again, or start without it and type.",
      offerWithoutMic: true,
    };
  }
  if (message === "WebSocket connection error") {
    return {
      text:
        call.failure === "dropped"
          ? "The connection to the voice service dropped. Start the call again to carry on the same conversation."
          : "The call could not start: the voice service refused the connection or could not be reached.",
      offerWithoutMic: false,
    };
  }
  return { text: `Something went wrong: ${message}`, offerWithoutMic: false };
}

function onMessage(message) {
  const turnId = message.turn_id == null ? null : String(message.turn_id);
  switch (message.type) {
    case "turn.start":
      // The caller started talking (or typing) over the agent: its reply stops here.
      if (message.role === "user") transcript.cutAgent();
      break;
    case "user.transcript.interim_delta":
    case "user.transcript.delta":
      transcript.userPart(turnId, Number(message.delta_counter), message.content || "");
      break;
    case "user.transcript":
      transcript.userFinal(turnId, message.content || "");
      break;
    case "response.text":
      // The words Layercode is speaking, appended as they come (as Layercode's own example
      // frontend does); `response.text.delta` repeats them in smaller pieces and is left out.
      transcript.agentText(turnId, message.content || "");
      break;
    case "response.end":
      transcript.agentEnd(turnId);
      hangUp.turnEnded(turnId);
      break;
    case "turn.end":
      if (message.role === "assistant") {
        transcript.agentEnd(turnId);
        hangUp.turnEnded(turnId);
      }
      break;
    default:
      break;
  }
}

// Our Worker's `response.data` events: tool status, and the request to end the call.
function onDataMessage(message) {
  const turnId = message.turn_id == null ? null : String(message.turn_id);
  const content = message.content;
  if (content && content.type === "tool" && typeof content.name === "string") {
    transcript.tool(turnId, String(content.call_id || content.name), toolLine(content));
  } else if (content && content.action === "end_call") {
    transcript.agentEvent(turnId, "The agent is ending the call.");
    hangUp.request(turnId);
  } else {
    transcript.agentEvent(turnId, `Data from the agent: ${JSON.stringify(content)}`);
  }
}

function toolLine({ name, status }) {
  switch (status) {
    case "started":
      return `Using the tool ${name}…`;
    case "done":
      return `The tool ${name} answered.`;
    case "error":
      return `The tool ${name} failed.`;
    case "timeout":
      return `The tool ${name} took too long.`;
    case "cancelled":
      return `The tool ${name} was cancelled.`;
    default:
      return `The tool ${name}: ${status}.`;
  }
}

function onAgentSpeaking(speaking) {
  call.agentSpeaking = speaking;
  hangUp.check();
}

function onMuted(muted) {
  call.muted = muted;
  render();
}

// `end_call`: hang up once the goodbye has been said (its turn ended and its audio played).
const hangUp = {
  turnId: null,
  ended: false,
  timer: null,
  cap: null,
  request(turnId) {
    this.reset();
    this.turnId = turnId;
  },
  turnEnded(turnId) {
    if (this.turnId === null || this.turnId !== turnId || this.ended) return;
    this.ended = true;
    // Whatever the audio does, the call ends within this long of the goodbye's last word.
    this.cap = setTimeout(() => endCall("agent"), 30000);
    this.check();
  },
  check() {
    if (this.turnId === null || !this.ended) return;
    clearTimeout(this.timer);
    if (call.agentSpeaking) return;
    // A moment's grace: the goodbye's audio may still be on its way.
    this.timer = setTimeout(() => {
      if (!call.agentSpeaking) endCall("agent");
    }, 400);
  },
  reset() {
    clearTimeout(this.timer);
    clearTimeout(this.cap);
    this.turnId = null;
    this.ended = false;
  },
};

// Level meters, written at most once per frame.
const levels = {
  values: { caller: 0, agent: 0 },
  frame: 0,
  set(who, level) {
    this.values[who] = Math.max(0, Math.min(1, Number(level) || 0));
    if (!this.frame) {
      this.frame = requestAnimationFrame(() => {
        this.frame = 0;
        ui.callerLevel.value = this.values.caller;
        ui.agentLevel.value = this.values.agent;
      });
    }
  },
  reset() {
    this.set("caller", 0);
    this.set("agent", 0);
  },
};

// ---------------------------------------------------------------------------------------------
// The page

function showProblem(text, offerWithoutMic = false) {
  ui.problem.textContent = text || "";
  ui.withoutMic.hidden = !offerWithoutMic;
}

function render() {
  const inCall = Boolean(call.client);
  ui.call.textContent = inCall ? "End call" : "Start call";
  ui.call.disabled = !settings.agentId;
  ui.mute.disabled = !(call.connected && call.microphone);
  ui.mute.setAttribute("aria-pressed", String(call.muted));
  ui.message.disabled = !call.connected;
  ui.send.disabled = !call.connected;
  const resumable = Boolean(store.get(CONVERSATION_KEY));
  ui.fresh.hidden = inCall || !(resumable || transcript.rows.length > 0);
  ui.status.textContent = statusText(inCall, resumable);
}

function statusText(inCall, resumable) {
  if (!settings.agentId) return "Not available.";
  if (!inCall) {
    return resumable
      ? "Not connected. Start the call to carry on this conversation."
      : "Not connected. Start a call to talk to the agent.";
  }
  if (!call.connected) return "Connecting…";
  if (call.microphone && call.muted) {
    return "Connected. Your microphone is muted; type a message below.";
  }
  if (settings.local || !call.microphone) return "Connected. Type a message below.";
  return "Connected. Speak, or type a message below.";
}

ui.call.addEventListener("click", () => {
  if (call.client) endCall("caller");
  else startCall(true);
});

ui.withoutMic.addEventListener("click", () => {
  showProblem(null);
  startCall(false);
});

ui.mute.addEventListener("click", () => {
  const client = call.client;
  if (!client || !call.connected) return;
  if (call.muted) client.unmute();
  else client.mute();
});

ui.fresh.addEventListener("click", () => {
  if (call.client) return;
  store.set(CONVERSATION_KEY, null);
  store.set(TRANSCRIPT_KEY, null);
  transcript.clear();
  showProblem(null);
  render();
});

ui.form.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = ui.message.value.trim();
  if (!text || !call.connected || !call.client) return;
  // Typing over the agent cuts it off, as talking over it would.
  transcript.cutAgent();
  transcript.typed(text);
  call.client.sendClientResponseText(text);
  ui.message.value = "";
});

if (settings.local) ui.localNote.hidden = false;
if (!settings.agentId) {
  showProblem("This server has no agent to call: its LAYERCODE_AGENT_ID setting is empty.");
}
try {
  transcript.restore(JSON.parse(store.get(TRANSCRIPT_KEY) || "[]"));
} catch {
  transcript.clear();
}
render();
document.body.dataset.ready = "true";
