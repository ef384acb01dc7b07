// The transcript: one row per turn, kept in a `role="log"` live region.
//
// A caller row shows the words as they are recognised (`user.transcript.delta` pieces merged by
// `delta_counter`, then the final `user.transcript`), or what was typed. An agent row shows the
// words as they are spoken (`response.text`), the tool and end-of-call events of its turn, and
// whether the caller cut it off.

const MAX_ROWS = 200;

export class Transcript {
  /**
   * @param {HTMLElement} container the `role="log"` element
   * @param {(rows: object[]) => void} save called (at most once per task) after a change
   */
  constructor(container, save) {
    this.container = container;
    this.save = save;
    this.rows = [];
    this.saveQueued = false;
    // Follow the newest words unless the reader scrolled up to read something older.
    this.follow = true;
    container.addEventListener("scroll", () => {
      this.follow = container.scrollTop + container.clientHeight >= container.scrollHeight - 8;
    });
    new ResizeObserver(() => this.scroll()).observe(container);
  }

  scroll() {
    if (this.follow) this.container.scrollTop = this.container.scrollHeight;
  }

  /** Rows saved by an earlier page load of this tab. */
  restore(saved) {
    this.clear();
    if (!Array.isArray(saved)) return;
    for (const item of saved.slice(-MAX_ROWS)) {
      if (!item || !["user", "agent", "note"].includes(item.role)) continue;
      const row = this.add(item.role, item.turnId == null ? null : String(item.turnId));
      row.text = String(item.text || "");
      row.state = item.state === "cut" ? "cut" : "done";
      row.events = Array.isArray(item.events)
        ? item.events.map((e) => ({ key: String(e.key), text: String(e.text) }))
        : [];
      this.draw(row);
    }
  }

  clear() {
    this.rows = [];
    this.container.replaceChildren();
    this.changed();
  }

  /** What the caller typed; it takes the turn id of the `user.transcript` that echoes it. */
  typed(text) {
    const row = this.add("user", null);
    row.text = text;
    row.typed = true;
    this.draw(row);
  }

  userPart(turnId, counter, content) {
    const row = this.find("user", turnId) || this.add("user", turnId);
    row.parts = row.parts || new Map();
    row.parts.set(Number.isFinite(counter) ? counter : row.parts.size, content);
    row.text = [...row.parts.entries()]
      .sort(([a], [b]) => a - b)
      .map(([, piece]) => piece)
      .join("");
    this.draw(row);
  }

  userFinal(turnId, content) {
    let row = this.find("user", turnId);
    if (!row) {
      // The echo of a typed message: the row is already there, without its turn id.
      row = this.rows.find((r) => r.role === "user" && r.typed && r.turnId === null);
      if (row && row.text.trim() !== content.trim()) row = null;
    }
    row = row || this.add("user", turnId);
    row.turnId = turnId;
    row.parts = null;
    row.text = content;
    this.draw(row);
  }

  agentText(turnId, content) {
    const row = this.agentRow(turnId);
    row.text += content;
    this.draw(row);
  }

  agentEnd(turnId) {
    const row = this.find("agent", turnId);
    if (row && row.state === "speaking") {
      row.state = "done";
      this.draw(row);
    }
  }

  /** A tool's status line in its turn's row, updated in place as the call settles. */
  tool(turnId, callId, text) {
    const row = this.agentRow(turnId);
    const key = `tool:${callId}`;
    const event = row.events.find((e) => e.key === key);
    if (event) event.text = text;
    else row.events.push({ key, text });
    this.draw(row);
  }

  agentEvent(turnId, text) {
    const row = this.agentRow(turnId);
    row.events.push({ key: `event:${row.events.length}`, text });
    this.draw(row);
  }

  /** The caller talked or typed over the agent: the reply being spoken stops where it is. */
  cutAgent() {
    for (const row of this.rows) {
      if (row.role === "agent" && row.state === "speaking") {
        row.state = "cut";
        this.draw(row);
      }
    }
  }

  note(text) {
    const row = this.add("note", null);
    row.text = text;
    row.state = "done";
    this.draw(row);
  }

  agentRow(turnId) {
    return this.find("agent", turnId) || this.add("agent", turnId);
  }

  find(role, turnId) {
    if (turnId === null) return null;
    for (let i = this.rows.length - 1; i >= 0; i -= 1) {
      const row = this.rows[i];
      if (row.role === role && row.turnId === turnId) return row;
    }
    return null;
  }

  add(role, turnId) {
    const row = { role, turnId, text: "", state: role === "agent" ? "speaking" : "done", events: [] };
    row.element = this.element(row);
    this.rows.push(row);
    this.container.append(row.element);
    while (this.rows.length > MAX_ROWS) this.rows.shift().element.remove();
    this.scroll();
    return row;
  }

  element(row) {
    const element = document.createElement("div");
    element.className = `row ${row.role}`;
    element.dataset.role = row.role;
    if (row.role !== "note") {
      const who = document.createElement("span");
      who.className = "who";
      who.textContent = row.role === "user" ? "You:" : "Agent:";
      element.append(who, " ");
    }
    const words = document.createElement("span");
    words.className = "words";
    const mark = document.createElement("span");
    mark.className = "mark";
    const events = document.createElement("ul");
    events.className = "events";
    events.hidden = true;
    element.append(words, mark, events);
    return element;
  }

  draw(row) {
    const element = row.element;
    element.dataset.state = row.state;
    if (row.turnId !== null) element.dataset.turnId = row.turnId;
    const words = element.querySelector(".words");
    const shown = words.textContent;
    // Appended words are added as new text, so a screen reader announces only them.
    if (row.text.startsWith(shown)) {
      if (row.text.length > shown.length) words.append(row.text.slice(shown.length));
    } else {
      words.textContent = row.text;
    }
    element.querySelector(".mark").textContent = row.state === "cut" ? " (cut off)" : "";
    const list = element.querySelector(".events");
    list.hidden = row.events.length === 0;
    list.replaceChildren(
      ...row.events.map((event) => {
        const item = document.createElement("li");
        item.textContent = event.text;
        return item;
      }),
    );
    this.scroll();
    this.changed();
  }

  changed() {
    if (this.saveQueued) return;
    this.saveQueued = true;
    queueMicrotask(() => {
      this.saveQueued = false;
      this.save(
        this.rows.map(({ role, turnId, text, state, events }) => ({
          role,
          turnId,
          text,
          state: state === "speaking" ? "done" : state,
          events,
        })),
      );
    });
  }
}
