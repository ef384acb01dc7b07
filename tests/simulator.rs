//! End-to-end tests of the `layercode-sim` binary: it runs with `--script` against the real worker
//! (under `wrangler dev`, Gemini mocked) and the tests read what it printed and its exit code.
//! Needs the built worker (`sh scripts/build.sh`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test fails by panicking

mod common;
use common::*;

use std::fs;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// A simulator run never takes this long; past it the run is killed and the test fails.
const RUN_DEADLINE: Duration = Duration::from_secs(120);
const SHORT: Duration = Duration::from_secs(10);

/// What one simulator run printed.
struct SimRun {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl SimRun {
    /// Panics with both outputs unless `needle` is in stdout; returns its byte offset.
    fn find(&self, needle: &str) -> usize {
        self.stdout
            .find(needle)
            .unwrap_or_else(|| panic!("stdout lacks {needle:?}\n{self}"))
    }
}

impl std::fmt::Display for SimRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit code {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// A fresh working directory for one run (the simulator reads `.dev.vars` from its cwd).
fn run_dir() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!(
        "target/e2e/sim-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("create run dir");
    dir
}

/// Runs `layercode-sim --script <lines> <args>` in `dir` with the given secret variable
/// (None: unset), and waits for it to exit.
fn simulate(dir: &PathBuf, lines: &[&str], env_secret: Option<&str>, args: &[&str]) -> SimRun {
    let script = dir.join("script.txt");
    fs::write(&script, lines.join("\n")).expect("write script");
    let mut command = Command::new(env!("CARGO_BIN_EXE_layercode-sim"));
    command
        .current_dir(dir)
        .arg("--script")
        .arg(&script)
        .args(args)
        .env_remove("LAYERCODE_WEBHOOK_SECRET")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(secret) = env_secret {
        command.env("LAYERCODE_WEBHOOK_SECRET", secret);
    }
    let child = command.spawn().expect("start layercode-sim");
    let run = wait_with_deadline(child);
    println!("{run}"); // shown with --nocapture, or by the harness when the test fails
    let _ = fs::remove_dir_all(dir);
    run
}

/// Like `Child::wait_with_output`, but kills the child after [`RUN_DEADLINE`].
fn wait_with_deadline(mut child: Child) -> SimRun {
    let read_all = |mut pipe: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = read_all(Box::new(child.stdout.take().expect("piped stdout")));
    let stderr = read_all(Box::new(child.stderr.take().expect("piped stderr")));
    let deadline = Instant::now() + RUN_DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for layercode-sim") {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(50));
    };
    let run = SimRun {
        code: status.and_then(|s| s.code()),
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    };
    assert!(
        status.is_some(),
        "layercode-sim did not exit within {RUN_DEADLINE:?}\n{run}"
    );
    run
}

/// `(role, text)` of each entry of a Gemini request's `contents`.
fn contents(request: &RecordedRequest) -> Vec<(String, String)> {
    let body = request.json();
    body["contents"]
        .as_array()
        .unwrap_or_else(|| panic!("no contents in {body}"))
        .iter()
        .map(|c| {
            let text: String = c["parts"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| p["text"].as_str())
                .collect();
            (c["role"].as_str().unwrap_or_default().to_string(), text)
        })
        .collect()
}

fn pair(role: &str, text: &str) -> (String, String) {
    (role.to_string(), text.to_string())
}

#[test]
fn a_three_turn_script_streams_every_reply_in_order() {
    let gemini = MockGemini::start();
    let layercode = MockLayercode::start();
    let worker = Worker::start(
        WorkerOptions::new(&gemini, &layercode).var("WELCOME_MESSAGE", "Welcome to the test."),
    );
    let gap = Duration::from_millis(50);
    gemini.push(gemini_fixtures::reply(&["Hello", " there."], gap));
    gemini.push(gemini_fixtures::reply(&["I am", " fine,", " thanks."], gap));
    gemini.push(gemini_fixtures::reply(&["Goodbye", " now."], gap));

    // The secret comes from the environment, as after `export LAYERCODE_WEBHOOK_SECRET=…`.
    let run = simulate(
        &run_dir(),
        &["hi", "", "how are you?", "bye"],
        Some(TEST_WEBHOOK_SECRET),
        &["--url", &worker.base_url],
    );
    assert_eq!(run.code, Some(0), "{run}");

    // Everything in order: greeting, then each line and its reply.
    let mut last = 0;
    for expected in [
        "agent> Welcome to the test.\n",
        "you> hi\n",
        "agent> Hello there.\n",
        "you> how are you?\n",
        "agent> I am fine, thanks.\n",
        "you> bye\n",
        "agent> Goodbye now.\n",
        "session ended (7 transcript items)\n",
        "script: 4 turns, 4 ended cleanly, 0 interrupted, 0 failed\n",
    ] {
        let at = run.find(expected);
        assert!(at >= last, "{expected:?} out of order\n{run}");
        last = at;
    }
    // One timing line per turn, right after its reply.
    let timing_lines: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| {
            l.starts_with("  [first text ") && l.ends_with(" ms · ended with response.end]")
        })
        .collect();
    assert_eq!(timing_lines.len(), 4, "{run}");
    assert!(!run.stdout.contains("warning"), "{run}");

    // All turns belong to one conversation: the last Gemini call saw the whole history.
    let requests = gemini.wait_for_requests(3, SHORT);
    let history = contents(&requests[2]);
    assert!(
        history.ends_with(&[
            pair("user", "hi"),
            pair("model", "Hello there."),
            pair("user", "how are you?"),
            pair("model", "I am fine, thanks."),
            pair("user", "bye"),
        ]),
        "{history:?}"
    );
}

#[test]
fn interrupt_after_cuts_the_reply_and_reports_what_was_heard() {
    let gemini = MockGemini::start();
    let layercode = MockLayercode::start();
    let worker = Worker::start(
        // A one-word greeting: shorter than the limit, so it is not interrupted.
        WorkerOptions::new(&gemini, &layercode).var("WELCOME_MESSAGE", "Hello!"),
    );
    // A slow story, still streaming when the simulator barges in. Its third word ends only
    // when the third chunk arrives, so the cut has to wait for that chunk. It goes on for a
    // minute, so it is still streaming when the worker gives up on it, however late that comes
    // (told once, in about 3 s, it could end first on a loaded machine, and the check that the
    // worker gave up on it failed).
    let rest = "was a very long story that nobody ever heard to the end, because every time \
                somebody started telling it the listener fell asleep.";
    let mut story = vec!["Once".to_string(), " upon a".into(), " time, there".into()];
    for _ in 0..25 {
        story.extend(rest.split(' ').map(|word| format!(" {word}")));
    }
    let parts: Vec<&str> = story.iter().map(String::as_str).collect();
    gemini.push(gemini_fixtures::reply(&parts, Duration::from_millis(100)));
    gemini.push(gemini_fixtures::reply(
        &["Sure, what", " else?"],
        Duration::ZERO,
    ));

    // The secret comes from .dev.vars in the working directory, as a quoted rotation list.
    let dir = run_dir();
    fs::write(
        dir.join(".dev.vars"),
        format!("LAYERCODE_API_KEY=x\nLAYERCODE_WEBHOOK_SECRET=\"{TEST_WEBHOOK_SECRET},older\"\n"),
    )
    .expect("write .dev.vars");
    let run = simulate(
        &dir,
        &["tell me a story", "stop, something else"],
        None,
        &[
            "--url",
            &format!("{}/agent", worker.base_url),
            "--interrupt-after",
            "3",
        ],
    );
    assert_eq!(run.code, Some(0), "{run}");

    run.find("agent> Hello!\n  [first text ");
    let cut = run.find("  [interrupted after 3 words]\n");
    // What the simulator printed of the story: the agent line just before the marker.
    let printed = run.stdout[..cut]
        .lines()
        .next_back()
        .and_then(|l| l.strip_prefix("agent> "))
        .unwrap_or_else(|| panic!("no agent line before the interruption\n{run}"));
    assert_eq!(printed, "Once upon a", "{run}");
    assert!(
        !run.stdout.contains("time,"),
        "printed past the third word\n{run}"
    );
    run.find("agent> Sure, what else?\n");
    run.find("script: 3 turns, 2 ended cleanly, 1 interrupted, 0 failed\n");
    run.find("session ended (");

    // The next Gemini call sees the interrupted turn as exactly what the simulator printed.
    let requests = gemini.wait_for_requests(2, SHORT);
    let history = contents(&requests[1]);
    assert!(
        history.ends_with(&[
            pair("user", "tell me a story"),
            pair("model", printed),
            pair("user", "stop, something else"),
        ]),
        "{history:?}"
    );
    // Dropping the connection reached the worker, which gave up on the rest of the story.
    assert!(
        gemini.client_disconnected(0, TURN_TIMEOUT),
        "the worker kept streaming the interrupted reply from Gemini"
    );
}

#[test]
fn a_wrong_secret_and_a_silent_stream_fail_clearly() {
    let gemini = MockGemini::start();
    let layercode = MockLayercode::start();
    // The longest silence limit the worker takes: its apology never comes before the
    // simulator's own turn timeout below.
    let worker =
        Worker::start(WorkerOptions::new(&gemini, &layercode).var("GEMINI_TIMEOUT_MS", "120000"));

    // --secret wins over a correct secret in the environment.
    let run = simulate(
        &run_dir(),
        &["hello?"],
        Some(TEST_WEBHOOK_SECRET),
        &["--url", &worker.base_url, "--secret", "not-the-secret"],
    );
    assert_ne!(run.code, Some(0), "{run}");
    assert!(
        run.stderr.contains(
            "the backend rejected the signature (401): the secret does not match the worker's \
             LAYERCODE_WEBHOOK_SECRET"
        ),
        "{run}"
    );
    assert!(!run.stdout.contains("not-the-secret") && !run.stderr.contains("not-the-secret"));
    assert!(
        gemini.requests().is_empty(),
        "a rejected webhook reached Gemini"
    );

    // Gemini never answers: the stream stays silent past --turn-timeout and the turn fails,
    // but the run goes on to the next line and still ends the session. The timeout applies to
    // that next turn too, which must be answered in time: 10 s (with 1 s, a turn slowed past a
    // second on a loaded machine failed as well).
    gemini.push(GeminiReply::Hang);
    let run = simulate(
        &run_dir(),
        &["anyone there?", "hello?"],
        None,
        &[
            "--url",
            &worker.base_url,
            "--secret",
            TEST_WEBHOOK_SECRET,
            "--turn-timeout",
            "10",
            "--no-session-start",
        ],
    );
    assert_eq!(run.code, Some(1), "{run}");
    run.find("failed: no response.end within 10 s]\nyou> hello?\n");
    run.find("agent> Hello from the mock.\n  [first text ");
    run.find("session ended (3 transcript items)\n");
    run.find("script: 2 turns, 1 ended cleanly, 0 interrupted, 1 failed\n");
}

#[test]
fn an_unreachable_backend_is_reported() {
    let closed = ClosedPort::reserve();
    let url = closed.url();
    let run = simulate(
        &run_dir(),
        &["hello?"],
        None,
        &["--url", &url, "--secret", "s"],
    );
    assert_eq!(run.code, Some(1), "{run}");
    assert!(
        run.stderr.contains(&format!(
            "cannot reach the backend at {url}: is it running? start it with ./scripts/dev.sh"
        )),
        "{run}"
    );
}
