// The contract's floor: the least a backend with our worker's contract can do, in plain JS, so
// the bench can tell the cost of the contract from the cost of our implementation of it
// (BENCHMARKS.md, "The contract's floor"). Run it in place of ours:
//
//   LATENCY_BENCH_WORKER_DIR=benches/contract/hop_sql cargo bench --bench latency
//
// Every variant checks the Layercode signature (HMAC-SHA256 over `t.body`, WebCrypto), answers
// `data` without storage and records `session.end` in the conversation's SQLite Durable Object.
// A `message` is spoken as Gemini streams it, one `response.tts` frame per streamed event, then
// `response.end`. The variants differ in where the turn runs and what it stores (VARIANT in each
// directory's wrangler.toml):
//
//   hop      The Worker forwards the raw body to the conversation's object with `fetch`; the
//            object calls Gemini and streams the frames back through the Worker. No history:
//            the cost of the hop alone.
//   hop_sql  hop, with history: the object reads the last 40 messages (one SQL read), stores
//            the user message and an empty reply once the Gemini request has left, and the
//            reply when it ends (two writes, two commits). Where our worker runs its turns.
//   rpc_sql  The turn runs in the Worker: a JS RPC call to the object before the model (history
//            read + the same first write) and one after it (the reply), the model's stream
//            going straight to the caller.
//
// Left out on purpose, all of which ours does: timeouts and retries, apologies, the speech
// filter, interruption contexts, redelivery, retention, turn limits, tools and the log line.

import { DurableObject } from "cloudflare:workers";

const encoder = new TextEncoder();
const WINDOW = 40;
let signingKey = null;

export default {
  async fetch(request, env, ctx) {
    const { pathname } = new URL(request.url);
    if (pathname === "/health") return new Response("ok");
    if (request.method !== "POST" || pathname !== "/agent") return json({ error: "not found" }, 404);
    const raw = await request.arrayBuffer();
    const signed = await verify(env.LAYERCODE_WEBHOOK_SECRET, request.headers.get("layercode-signature"), raw);
    if (!signed) return json({ error: "invalid signature" }, 401);
    const event = JSON.parse(new TextDecoder().decode(raw));
    if (event.type === "data") return json({ status: "ok" });
    const conversation = env.CONVERSATIONS.getByName(event.conversation_id);
    if (env.VARIANT !== "rpc_sql") {
      return conversation.fetch(`https://conversation/${event.type}`, { method: "POST", body: raw });
    }
    if (event.type === "session.end") {
      await conversation.endSession(event.session_id);
      return json({ status: "ok" });
    }
    const contents = await conversation.history(event.text);
    return speak(env, event, contents, ctx, {
      sent: () => conversation.begin(event.turn_id, event.text),
      ended: (reply) => conversation.finish(event.turn_id, reply),
    });
  },
};

export class Conversation extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.stores = env.VARIANT !== "hop";
    if (this.stores) {
      this.sql.exec(
        "CREATE TABLE IF NOT EXISTS messages (seq INTEGER PRIMARY KEY, turn_id TEXT, role TEXT, text TEXT);" +
          "CREATE TABLE IF NOT EXISTS sessions (session_id TEXT PRIMARY KEY)",
      );
    }
  }

  async fetch(request) {
    const kind = new URL(request.url).pathname.slice(1);
    const event = await request.json();
    if (kind === "session.end") {
      if (this.stores) this.endSession(event.session_id);
      return json({ status: "ok" });
    }
    const contents = this.stores ? this.history(event.text) : [userContent(event.text)];
    return speak(this.env, event, contents, this.ctx, {
      sent: () => this.stores && this.begin(event.turn_id, event.text),
      ended: (reply) => this.stores && this.finish(event.turn_id, reply),
    });
  }

  // The window of history the model sees, ending with the new user message (as our worker's).
  history(text) {
    const { rows } = this.sql
      .exec(
        "SELECT json_group_array(json_object('role', role, 'parts', json_array(json_object('text', text)))) AS rows " +
          "FROM (SELECT role, text FROM messages WHERE text != '' ORDER BY seq DESC LIMIT ?)",
        WINDOW,
      )
      .one();
    const contents = JSON.parse(rows).reverse();
    contents.push(userContent(text));
    return contents;
  }

  begin(turnId, text) {
    this.sql.exec(
      "INSERT INTO messages (turn_id, role, text) VALUES (?, 'user', ?), (?, 'model', '')",
      turnId,
      text,
      turnId,
    );
  }

  finish(turnId, reply) {
    this.sql.exec("UPDATE messages SET text = ? WHERE turn_id = ? AND role = 'model'", reply, turnId);
  }

  endSession(sessionId) {
    this.sql.exec("INSERT OR REPLACE INTO sessions (session_id) VALUES (?)", sessionId);
  }
}

// Streams Gemini's reply as `response.tts` frames. `sent` runs once the Gemini request has left
// (a Durable Object's write holds back its later requests until it is stored), `ended` with the
// whole reply once the turn is over.
function speak(env, event, contents, ctx, { sent, ended }) {
  const { readable, writable } = new TransformStream();
  const writer = writable.getWriter();
  const send = (frame) =>
    writer.write(encoder.encode(`data: ${JSON.stringify({ ...frame, turn_id: event.turn_id })}\n\n`));
  const turn = async () => {
    let reply = "";
    try {
      const url = `${env.GEMINI_API_BASE_URL}/v1beta/models/${env.GEMINI_MODEL}:streamGenerateContent?alt=sse`;
      const response = fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json", "x-goog-api-key": env.GOOGLE_GENERATIVE_AI_API_KEY },
        body: JSON.stringify({ contents }),
      });
      await sent();
      const gemini = await response;
      const decoder = new TextDecoder();
      let pending = "";
      for await (const bytes of gemini.body) {
        pending += decoder.decode(bytes, { stream: true });
        let end;
        while ((end = pending.indexOf("\n\n")) >= 0) {
          const data = pending.slice(0, end).replace(/^data: /, "");
          pending = pending.slice(end + 2);
          const parts = JSON.parse(data).candidates?.[0]?.content?.parts ?? [];
          const content = parts.map((part) => part.text ?? "").join("");
          if (content) {
            reply += content;
            await send({ type: "response.tts", content });
          }
        }
      }
    } catch (error) {
      console.error(`contract-floor turn failed: ${error}`);
    } finally {
      await send({ type: "response.end" });
      await writer.close();
    }
    await ended(reply);
  };
  ctx.waitUntil(turn());
  return new Response(readable, { headers: { "content-type": "text/event-stream" } });
}

const userContent = (text) => ({ role: "user", parts: [{ text }] });

const json = (body, status = 200) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });

// `layercode-signature: t=<unix secs>,v1=<hex HMAC-SHA256 of "t.body">`, within 5 minutes.
async function verify(secret, header, raw) {
  const fields = Object.fromEntries((header ?? "").split(",").map((part) => part.trim().split("=")));
  const t = fields.t;
  const mac = fields.v1?.match(/^[0-9a-f]{64}$/i) && fields.v1;
  if (!secret || !t || !mac || Math.abs(Date.now() / 1000 - Number(t)) > 300) return false;
  signingKey ??= await crypto.subtle.importKey(
    "raw",
    encoder.encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["verify"],
  );
  const prefix = encoder.encode(`${t}.`);
  const message = new Uint8Array(prefix.length + raw.byteLength);
  message.set(prefix);
  message.set(new Uint8Array(raw), prefix.length);
  const bytes = new Uint8Array(mac.match(/../g).map((hex) => parseInt(hex, 16)));
  return crypto.subtle.verify("HMAC", signingKey, bytes, message);
}
