// Drives Debian's Chromium (headless) for the Rust browser tests (tests/voice_page.rs, through
// tests/common/browser.rs): one JSON command per stdin line, one JSON answer per stdout line.
// It holds no test logic; the Rust test decides what to do and what must hold.
//
// Chromium comes from Debian (/usr/bin/chromium, or $CHROMIUM), driven by playwright-core and
// its CDP protocol; nothing is downloaded. axe-core (pinned in package.json) checks accessibility.

import { createInterface } from "node:readline";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { chromium } from "playwright-core";

const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
const browser = await chromium.launch({
  executablePath,
  headless: true,
  // Playwright makes a fresh, empty user data directory for this launch and removes it after.
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    // A synthetic microphone (a beeping tone), for pages allowed to use it.
    "--use-fake-device-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
  ],
});

// Every wait here is for a condition; its timeout only catches a hang, so it is generous: a
// step of a call crosses the browser, the stand-in, the worker and the model mock, each of which
// a loaded machine can hold up (one turn alone may take the tests' TURN_TIMEOUT, 30 s).
const HANG_TIMEOUT = 60000;

let page = null;
let problems = [];

function watch(p) {
  problems = [];
  p.on("console", (message) => {
    if (message.type() === "error") problems.push(`console.error: ${message.text()}`);
  });
  p.on("pageerror", (error) => problems.push(`uncaught: ${error.message}`));
  p.on("requestfailed", (request) => {
    problems.push(`request failed: ${request.url()} (${request.failure()?.errorText})`);
  });
}

async function waitUntil(fn, arg, timeout) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const value = await page.evaluate(fn, arg);
    if (value) return value;
    if (Date.now() > deadline) {
      throw new Error(`not true within ${timeout} ms: ${fn.toString().slice(0, 200)} ${JSON.stringify(arg)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const ready = () => document.body.dataset.ready === "true";

// Keeps the highest value each level meter has shown since the page loaded (`peaks` in the
// snapshot). A level is there only while a voice plays: a test that looked at the level now
// could look after the agent's voice stopped, on a machine that got to it late. A <meter>'s
// value is its attribute, so an observer sees every change, with no polling to miss one.
function watchLevels() {
  const peaks = { caller: 0, agent: 0 };
  window.__levelPeaks = peaks;
  for (const [who, id] of [["caller", "caller-level"], ["agent", "agent-level"]]) {
    const meter = document.getElementById(id);
    const note = () => {
      peaks[who] = Math.max(peaks[who], Number(meter.value) || 0);
    };
    note();
    new MutationObserver(note).observe(meter, { attributes: true, attributeFilter: ["value"] });
  }
}

// The page as a test sees it: status, problem, controls and transcript rows.
function snapshot() {
  const rows = [...document.querySelectorAll("#transcript .row")].map((row) => ({
    role: row.dataset.role,
    turn: row.dataset.turnId || null,
    state: row.dataset.state,
    text: row.querySelector(".words").textContent,
    events: [...row.querySelectorAll(".events li")].map((li) => li.textContent),
  }));
  const button = (id) => {
    const b = document.getElementById(id);
    return { text: b.textContent, disabled: b.disabled, hidden: b.hidden, pressed: b.getAttribute("aria-pressed") };
  };
  return {
    status: document.getElementById("status").textContent,
    problem: document.getElementById("problem").textContent,
    call: button("call"),
    mute: button("mute"),
    fresh: button("new-conversation"),
    withoutMic: button("call-without-mic"),
    messageDisabled: document.getElementById("message").disabled,
    callerLevel: Number(document.getElementById("caller-level").value),
    agentLevel: Number(document.getElementById("agent-level").value),
    peaks: window.__levelPeaks || { caller: 0, agent: 0 },
    localNote: !document.getElementById("local-note").hidden,
    rows,
  };
}

function satisfies(snap, condition) {
  const rowMatches = (want) => (row) =>
    Object.entries(want).every(([key, value]) =>
      key === "textIncludes"
        ? row.text.includes(value)
        : key === "eventIncludes"
          ? row.events.some((e) => e.includes(value))
          : row[key] === value,
    );
  const checks = {
    status: (v) => snap.status.includes(v),
    problem: (v) => snap.problem.includes(v),
    callText: (v) => snap.call.text === v,
    row: (want) => snap.rows.some(rowMatches(want)),
    rowCount: ({ match, atLeast }) => snap.rows.filter(rowMatches(match)).length >= atLeast,
    agentLevelPeakAbove: (v) => snap.peaks.agent > v,
    callerLevelPeakAbove: (v) => snap.peaks.caller > v,
  };
  return Object.entries(condition).every(([key, value]) => {
    if (!checks[key]) throw new Error(`unknown condition ${key}`);
    return checks[key](value);
  });
}

const commands = {
  async open({ url, microphone = true, width = 1280, height = 900 }) {
    if (page) await page.context().close();
    const context = await browser.newContext({
      viewport: { width, height },
      permissions: microphone ? ["microphone"] : [],
    });
    context.setDefaultTimeout(HANG_TIMEOUT);
    context.setDefaultNavigationTimeout(HANG_TIMEOUT);
    page = await context.newPage();
    watch(page);
    await page.goto(url);
    await waitUntil(ready, null, HANG_TIMEOUT);
    await page.evaluate(watchLevels);
    return page.evaluate(snapshot);
  },
  async reload() {
    await page.reload();
    await waitUntil(ready, null, HANG_TIMEOUT);
    await page.evaluate(watchLevels);
    return page.evaluate(snapshot);
  },
  async click({ name }) {
    await page.getByRole("button", { name, exact: true }).click();
    return null;
  },
  // Keyboard only: focus the text box by its label, type, press Enter.
  async say({ text }) {
    await page.getByLabel("Type a message").focus();
    await page.keyboard.type(text);
    await page.keyboard.press("Enter");
    return null;
  },
  async press({ key }) {
    await page.keyboard.press(key);
    return null;
  },
  // The accessible name (or tag) of the element focused after each Tab.
  async tabOrder({ count }) {
    const order = [];
    for (let i = 0; i < count; i += 1) {
      await page.keyboard.press("Tab");
      order.push(
        await page.evaluate(() => {
          const el = document.activeElement;
          if (!el || el === document.body) return "(body)";
          if (el.labels && el.labels.length) return el.labels[0].textContent.trim();
          return el.getAttribute("aria-label") || el.textContent.trim() || el.tagName;
        }),
      );
    }
    return order;
  },
  async state() {
    return page.evaluate(snapshot);
  },
  // Waits until the page's snapshot satisfies a condition (checked here, not in the page,
  // whose policy allows no eval): text in a field, a row, the peak of a level above a value.
  async waitFor({ condition, timeout = HANG_TIMEOUT }) {
    const deadline = Date.now() + timeout;
    let snap;
    for (;;) {
      snap = await page.evaluate(snapshot);
      if (satisfies(snap, condition)) return snap;
      if (Date.now() > deadline) {
        throw new Error(
          `the page did not reach ${JSON.stringify(condition)} within ${timeout} ms; it shows ${JSON.stringify(snap)}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  },
  async axe() {
    await page.evaluate(axeSource);
    return page.evaluate(async () => {
      // eslint-disable-next-line no-undef
      const result = await axe.run(document, { resultTypes: ["violations"] });
      return result.violations.map((v) => ({
        id: v.id,
        impact: v.impact,
        help: v.help,
        nodes: v.nodes.map((n) => n.target.join(" ")),
      }));
    });
  },
  async setViewport({ width, height }) {
    await page.setViewportSize({ width, height });
    return page.evaluate(() => ({
      scrollWidth: document.documentElement.scrollWidth,
      clientWidth: document.documentElement.clientWidth,
    }));
  },
  async screenshot({ path, fullPage = false }) {
    await page.screenshot({ path, fullPage });
    return null;
  },
  async problems() {
    return problems;
  },
  async sessionStorage() {
    return page.evaluate(() => Object.fromEntries(Object.entries(window.sessionStorage)));
  },
  async quit() {
    await browser.close();
    setTimeout(() => process.exit(0), 0);
    return null;
  },
};

const reply = (message) => process.stdout.write(`${JSON.stringify(message)}\n`);
reply({ event: "ready", version: browser.version() });

const lines = createInterface({ input: process.stdin });
let queue = Promise.resolve();
lines.on("line", (line) => {
  queue = queue.then(async () => {
    let request;
    try {
      request = JSON.parse(line);
      const command = commands[request.cmd];
      if (!command) throw new Error(`unknown command ${request.cmd}`);
      reply({ id: request.id, ok: true, value: await command(request) });
    } catch (error) {
      reply({ id: request?.id ?? null, ok: false, error: String(error?.stack || error) });
    }
  });
});
lines.on("close", () => {
  queue.then(() => browser.close()).finally(() => process.exit(0));
});
