// An experiment, not a benchmark: what the local runtime tells a streaming worker when its
// client goes away (RELIABILITY.md, issue 22 item 4). `tests/hangup_report.rs` drives it.
//
// POST /stream?id=X answers at once with a TransformStream's readable side, then, after
// `wait` ms, writes `writes` frames `gap` ms apart and closes. A gap ends early once the
// hang-up is reported (the signal aborted and `closed` rejected), so with a long `gap` the
// writes after a report come right after it, while the report has all that time to come.
// Everything the worker can observe is recorded with its time since the request arrived: the
// request's abort signal, the writer's `closed` and `ready` promises, each write's result and
// the signal's state around it.
// GET /report?id=X returns that record as JSON.

const reports = new Map();

export default {
  async fetch(request, env, ctx) {
    const url = new URL(request.url);
    const id = url.searchParams.get("id") ?? "";
    // The test harness waits for this before using a worker.
    if (request.method === "GET" && url.pathname === "/health") {
      return Response.json({ status: "ok" });
    }
    if (request.method === "GET" && url.pathname === "/report") {
      return Response.json(reports.get(id) ?? null);
    }
    if (request.method !== "POST" || url.pathname !== "/stream") {
      return new Response("not found", { status: 404 });
    }
    await request.arrayBuffer();
    const wait = Number(url.searchParams.get("wait") ?? 500);
    const writes = Number(url.searchParams.get("writes") ?? 3);
    const gap = Number(url.searchParams.get("gap") ?? 100);
    const start = Date.now();
    const events = [];
    reports.set(id, { done: false, events });
    const note = (what) => events.push({ ms: Date.now() - start, what });

    const aborted = new Promise((resolve) => {
      request.signal.addEventListener("abort", () => {
        note("signal abort");
        resolve();
      });
    });
    const { readable, writable } = new TransformStream();
    const writer = writable.getWriter();
    const closedRejected = new Promise((resolve) => {
      writer.closed.then(
        () => note("writer.closed resolved"),
        (e) => {
          note(`writer.closed rejected: ${e}`);
          resolve();
        },
      );
    });
    const reported = Promise.all([aborted, closedRejected]);
    const encoder = new TextEncoder();
    const run = async () => {
      await new Promise((resolve) => setTimeout(resolve, wait));
      note(`before writes: signal.aborted=${request.signal.aborted}`);
      for (let i = 1; i <= writes; i++) {
        const frame = encoder.encode(`data: {"type":"response.tts","content":"word ${i} "}\n\n`);
        try {
          await writer.write(frame);
          note(`write ${i} resolved; signal.aborted=${request.signal.aborted}`);
        } catch (e) {
          note(`write ${i} rejected: ${e}; signal.aborted=${request.signal.aborted}`);
        }
        // A settled `ready` means the stream takes more; a pending one after a resolved write
        // would mean the reader stopped taking.
        const ready = await Promise.race([
          writer.ready.then(() => "resolved", (e) => `rejected: ${e}`),
          new Promise((resolve) => setTimeout(() => resolve("pending"), 5)),
        ]);
        note(`ready after write ${i}: ${ready}`);
        await Promise.race([new Promise((resolve) => setTimeout(resolve, gap)), reported]);
      }
      try {
        await writer.close();
        note("close resolved");
      } catch (e) {
        note(`close rejected: ${e}`);
      }
      // Give late signals a chance to arrive before the record is read.
      await new Promise((resolve) => setTimeout(resolve, 300));
      note(`end: signal.aborted=${request.signal.aborted}`);
      reports.get(id).done = true;
    };
    ctx.waitUntil(run());
    return new Response(readable, {
      headers: { "content-type": "text/event-stream", "cache-control": "no-cache" },
    });
  },
};
