//! `layercode-sim`: a terminal stand-in for the Layercode platform. It sends the worker the same
//! signed webhooks Layercode would (session.start, one message per line, session.end), shows
//! each streamed reply word by word, and can barge in, so a developer can test the backend
//! without an account, a public URL or a microphone. Run with `--help` for the options.
//!
//! `layercode-sim serve` is the other way round: a local stand-in for Layercode's cloud that the
//! worker's voice page talks to through the browser SDK (see `standin/`).
//!
//! Native only: on wasm32 (where the crate is linted for the Worker) this is an empty stub,
//! since its HTTP client does not exist there. worker-build never builds it.

/// `println!` that ignores a closed stdout (say, piped into `head`) instead of panicking.
#[cfg(not(target_arch = "wasm32"))]
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

#[cfg(not(target_arch = "wasm32"))]
mod args;
#[cfg(not(target_arch = "wasm32"))]
mod client;
#[cfg(not(target_arch = "wasm32"))]
mod input;
#[cfg(not(target_arch = "wasm32"))]
mod secret;
#[cfg(not(target_arch = "wasm32"))]
mod session;
#[cfg(not(target_arch = "wasm32"))]
mod spinner;
#[cfg(not(target_arch = "wasm32"))]
mod standin;
#[cfg(not(target_arch = "wasm32"))]
mod turn;

#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
fn main() -> std::process::ExitCode {
    use std::process::ExitCode;
    match args::parse(std::env::args().skip(1)) {
        Ok(args::Command::Help(text)) => {
            say!("{text}");
            ExitCode::SUCCESS
        }
        Ok(args::Command::Serve(args)) => match app::serve(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("error: {message}");
                ExitCode::FAILURE
            }
        },
        Ok(args::Command::Run(args)) => match app::run(&args) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::FAILURE,
            Err(message) => {
                eprintln!("error: {message}");
                ExitCode::FAILURE
            }
        },
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

/// The conversation loop.
#[cfg(not(target_arch = "wasm32"))]
mod app {
    use std::path::Path;

    use serde_json::Value;

    use crate::args::{Args, ServeArgs};
    use crate::client::{Backend, ClientError};
    use crate::input::Input;
    use crate::secret::{self, SECRET_VAR};
    use crate::session::Session;
    use crate::turn::{self, Ending};

    /// Runs the whole session. Ok(success) decides the exit code; Err is a message for stderr.
    pub fn run(args: &Args) -> Result<bool, String> {
        let env_secret = std::env::var(SECRET_VAR).ok();
        let secret = secret::resolve(args.secret.clone(), env_secret, Path::new(".dev.vars"))?;
        let backend = Backend::new(&args.url, secret.value, args.turn_timeout)?;
        let mut input = Input::open(args.script.as_deref())?;
        let version = check_health(&backend)?;

        let mut session = Session::new(args.conversation.clone());
        say!(
            "layercode-sim → {} ({version}) · conversation {} · secret from {}",
            backend.agent_url,
            session.conversation_id,
            secret.source
        );
        let mut tally = Tally::default();
        let conversation = converse(&backend, &mut session, &mut input, args, &mut tally);

        let session_ok = match conversation {
            Ok(()) => match backend.send(&session.session_end()) {
                Ok(_) => {
                    say!(
                        "session ended ({} transcript items)",
                        session.transcript_len()
                    );
                    true
                }
                Err(e) => {
                    eprintln!("error: session.end failed: {e}");
                    false
                }
            },
            // Unreachable or wrong secret: session.end would fail the same way.
            Err(fatal) => {
                eprintln!("error: {fatal}");
                false
            }
        };
        if !input.is_script() {
            // Interactive: failed turns were shown as they happened.
            return Ok(session_ok);
        }
        say!(
            "script: {} turns, {} ended cleanly, {} interrupted, {} failed",
            tally.turns(),
            tally.clean,
            tally.interrupted,
            tally.failed
        );
        Ok(session_ok && tally.failed == 0)
    }

    /// `serve`: the local Layercode stand-in, until the process is stopped.
    pub fn serve(args: &ServeArgs) -> Result<(), String> {
        use crate::standin::{self, Options, Server, Target};
        let env_secret = std::env::var(SECRET_VAR).ok();
        let secret = secret::resolve(args.secret.clone(), env_secret, Path::new(".dev.vars"))?;
        let target = Target::parse(&args.url)?;
        let listener = std::net::TcpListener::bind(("127.0.0.1", args.port))
            .map_err(|e| format!("cannot listen on 127.0.0.1:{}: {e}", args.port))?;
        let speech = args.speech && standin::speech_available();
        let voice = match (args.speech, speech) {
            (_, true) => "speech: espeak-ng",
            (true, false) => "speech: none (install espeak-ng to hear the agent)",
            (false, false) => "speech: off",
        };
        let webhooks = target.url();
        let server = Server::start(
            listener,
            Options {
                agent_id: args.agent_id.clone(),
                api_key: args.api_key.clone(),
                webhook_secret: secret.value,
                webhook_url: Some(target),
                speech,
                log: Box::new(|line| eprintln!("layercode-sim: {line}")),
            },
        )
        .map_err(|e| e.to_string())?;
        // One line on stdout, read by scripts/dev.sh for the port.
        say!(
            "layercode-sim: Layercode stand-in on {} (webhooks to {webhooks}, signed with the \
             secret from {}; agent {}; {voice})",
            server.base_url(),
            secret.source,
            args.agent_id
        );
        server.wait();
        Ok(())
    }

    /// The greeting, then one turn per input line.
    fn converse(
        backend: &Backend,
        session: &mut Session,
        input: &mut Input,
        args: &Args,
        tally: &mut Tally,
    ) -> Result<(), ClientError> {
        if args.session_start {
            let turn_id = session.next_turn_id();
            let event = session.session_start(&turn_id);
            reply(backend, session, &event, &turn_id, args, tally)?;
        }
        while let Some(line) = input.next_line() {
            let turn_id = session.next_turn_id();
            let event = session.message(&turn_id, &line);
            reply(backend, session, &event, &turn_id, args, tally)?;
        }
        Ok(())
    }

    fn reply(
        backend: &Backend,
        session: &mut Session,
        event: &Value,
        turn_id: &str,
        args: &Args,
        tally: &mut Tally,
    ) -> Result<(), ClientError> {
        let result = turn::run(backend, event, turn_id, args.interrupt_after);
        match result.ending {
            Ending::Completed => tally.clean += 1,
            Ending::Interrupted(_) => tally.interrupted += 1,
            Ending::Failed(_) => tally.failed += 1,
        }
        session.record_reply(turn_id, &result.heard, result.heard_at_ms);
        result.fatal.map_or(Ok(()), Err)
    }

    /// `GET /health`: fails fast when nothing listens, warns about missing settings, and
    /// returns the worker's version for the banner.
    fn check_health(backend: &Backend) -> Result<String, String> {
        let health = match backend.health() {
            Ok(Some(health)) => health,
            Ok(None) => {
                eprintln!(
                    "warning: {}/health did not answer 200 JSON: is this the worker?",
                    backend.base
                );
                return Ok("unknown version".into());
            }
            Err(e) if e.is_fatal() => return Err(e.to_string()),
            Err(e) => {
                eprintln!("warning: GET {}/health failed: {e}", backend.base);
                return Ok("unknown version".into());
            }
        };
        let missing = |name: &str| health["settings"][name] == Value::Bool(false);
        if missing("GOOGLE_GENERATIVE_AI_API_KEY") {
            eprintln!(
                "warning: the worker has no Gemini key: put GOOGLE_GENERATIVE_AI_API_KEY=… in \
                 .dev.vars and restart ./scripts/dev.sh (replies will be a spoken apology until then)"
            );
        }
        if missing(SECRET_VAR) {
            eprintln!(
                "warning: the worker has no webhook secret: put {SECRET_VAR}=… in .dev.vars and \
                 restart ./scripts/dev.sh (every webhook fails until then)"
            );
        }
        Ok(match health["version"].as_str() {
            Some(v) => format!("worker {v}"),
            None => "unknown version".into(),
        })
    }

    #[derive(Default)]
    struct Tally {
        clean: usize,
        interrupted: usize,
        failed: usize,
    }

    impl Tally {
        fn turns(&self) -> usize {
            self.clean + self.interrupted + self.failed
        }
    }
}
