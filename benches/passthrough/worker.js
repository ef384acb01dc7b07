// The benchmark's pass-through Layercode backend: the floor our worker is measured against
// (BENCHMARKS.md). No signature check, no history, no storage: POST /agent sends the webhook's
// text to Gemini's streamGenerateContent?alt=sse and turns each streamed event's text into a
// `response.tts` frame the moment it arrives, then `response.end`.

const encoder = new TextEncoder();

export default {
  async fetch(request, env, ctx) {
    const { pathname } = new URL(request.url);
    if (pathname === "/health") {
      return new Response("ok");
    }
    if (request.method !== "POST" || pathname !== "/agent") {
      return new Response("not found", { status: 404 });
    }
    const event = await request.json();
    const { readable, writable } = new TransformStream();
    ctx.waitUntil(speak(event, env, writable.getWriter()));
    return new Response(readable, { headers: { "content-type": "text/event-stream" } });
  },
};

async function speak(event, env, writer) {
  const send = (frame) =>
    writer.write(encoder.encode(`data: ${JSON.stringify({ ...frame, turn_id: event.turn_id })}\n\n`));
  try {
    if (event.type === "message") {
      const url = `${env.GEMINI_API_BASE_URL}/v1beta/models/${env.GEMINI_MODEL}:streamGenerateContent?alt=sse`;
      const gemini = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json", "x-goog-api-key": env.GOOGLE_GENERATIVE_AI_API_KEY },
        body: JSON.stringify({ contents: [{ role: "user", parts: [{ text: event.text }] }] }),
      });
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
          if (content) await send({ type: "response.tts", content });
        }
      }
    }
  } catch (error) {
    console.error(`pass-through turn failed: ${error}`);
  } finally {
    await send({ type: "response.end" });
    await writer.close();
  }
}
