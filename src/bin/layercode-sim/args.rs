//! Command-line arguments, parsed by hand (the simulator needs seven flags, not a framework).

use std::path::PathBuf;
use std::time::Duration;

/// What `--help` prints.
pub const USAGE: &str = "\
layercode-sim: talk to the worker the way Layercode does, from a terminal.

Sends signed webhooks (session.start, one message per line you type, session.end) to a running
backend and prints the streamed reply word by word, with its timing.

USAGE:
    layercode-sim [OPTIONS]

OPTIONS:
    --url URL              backend base URL or full .../agent URL [default: http://127.0.0.1:8787]
    --secret S             webhook secret [default: $LAYERCODE_WEBHOOK_SECRET, else the first
                           value of LAYERCODE_WEBHOOK_SECRET in ./.dev.vars]
    --conversation ID      conversation_id to use (reuse one to continue its history)
                           [default: a fresh sim_conv_<time>]
    --interrupt-after N    barge in on every reply after N words: drop the connection and send
                           the next message with interruption_context
    --script FILE          send each non-empty line of FILE instead of reading stdin; exit 1 if
                           any turn (the greeting counts as one) fails or session.end fails
    --turn-timeout SECS    fail a turn when the stream is silent this long [default: 30]
    --no-session-start     do not send session.start (no greeting)
    -h, --help             print this help

Interactive mode reads lines at the `you> ` prompt until end of input (Ctrl-D) or /quit.
Start a local backend with ./scripts/dev.sh.

layercode-sim serve [OPTIONS] runs a local stand-in for Layercode's cloud instead, for the
voice page (see `layercode-sim serve --help`; ./scripts/dev.sh starts it).";

/// What `serve --help` prints.
pub const SERVE_USAGE: &str = "\
layercode-sim serve: a local stand-in for Layercode's cloud, for the worker's voice page.

Answers POST /v1/agents/web/authorize_session (point the worker's LAYERCODE_API_BASE_URL here)
and the browser SDK's socket at /v1/agents/web/websocket (the page uses it when the worker has
VOICE_PAGE=local). Sends the worker signed webhooks as Layercode does: session.start, one message
per typed turn (interruption_context after a barge-in), data, session.end. Speaks the agent's
words with espeak-ng when it is installed. POST /v1/agents/{agent_id} with {\"webhook_url\": …}
changes where webhooks go. Prints one line when it listens:
`layercode-sim: Layercode stand-in on http://127.0.0.1:PORT ...`.

USAGE:
    layercode-sim serve [OPTIONS]

OPTIONS:
    --url URL          the worker's base URL or full .../agent URL, http only
                       [default: http://127.0.0.1:8787]
    --secret S         webhook secret [default: as for the simulator: $LAYERCODE_WEBHOOK_SECRET,
                       else LAYERCODE_WEBHOOK_SECRET in ./.dev.vars]
    --port N           port on 127.0.0.1 [default: 0, a free port the kernel picks]
    --api-key K        the bearer key the worker must send (its LAYERCODE_API_KEY)
                       [default: any non-empty key]
    --agent-id ID      the agent it knows (the worker's LAYERCODE_AGENT_ID) [default: local_agent]
    --no-speech        do not speak the agent's words (no espeak-ng)
    -h, --help         print this help";

/// The default backend: `wrangler dev`'s default address.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8787";
const DEFAULT_TURN_TIMEOUT_SECS: f64 = 30.0;

/// Everything the user asked for. The secret is resolved later (see `secret.rs`).
#[derive(Debug, Clone, PartialEq)]
pub struct Args {
    pub url: String,
    pub secret: Option<String>,
    pub conversation: Option<String>,
    pub interrupt_after: Option<usize>,
    pub script: Option<PathBuf>,
    /// How long a stream may stay silent; also bounds every other read.
    pub turn_timeout: Duration,
    pub session_start: bool,
}

impl Default for Args {
    fn default() -> Self {
        Args {
            url: DEFAULT_URL.to_string(),
            secret: None,
            conversation: None,
            interrupt_after: None,
            script: None,
            turn_timeout: Duration::from_secs_f64(DEFAULT_TURN_TIMEOUT_SECS),
            session_start: true,
        }
    }
}

/// The outcome of parsing: run, serve, or just print a help text.
#[derive(Debug, PartialEq)]
pub enum Command {
    Run(Args),
    Serve(ServeArgs),
    Help(&'static str),
}

/// `layercode-sim serve`: the local Layercode stand-in.
#[derive(Debug, Clone, PartialEq)]
pub struct ServeArgs {
    pub url: String,
    pub secret: Option<String>,
    pub port: u16,
    pub api_key: Option<String>,
    pub agent_id: String,
    pub speech: bool,
}

impl Default for ServeArgs {
    fn default() -> Self {
        ServeArgs {
            url: DEFAULT_URL.to_string(),
            secret: None,
            port: 0,
            api_key: None,
            agent_id: "local_agent".to_string(),
            speech: true,
        }
    }
}

/// Splits `--flag=value` into the flag and its inline value.
fn split_flag(arg: &str) -> (String, Option<&str>) {
    match arg.split_once('=') {
        Some((flag, value)) if flag.starts_with("--") => (flag.to_string(), Some(value)),
        _ => (arg.to_string(), None),
    }
}

/// The value of a flag that takes one: after `=` (`inline`), or the next argument.
fn flag_value(
    flag: &str,
    inline: Option<&str>,
    raw: &mut impl Iterator<Item = String>,
) -> Result<String, String> {
    match inline {
        Some(v) => Ok(v.to_string()),
        None => raw.next().ok_or_else(|| format!("{flag} needs a value")),
    }
}

/// Parses the arguments after `serve`.
fn parse_serve(mut raw: impl Iterator<Item = String>) -> Result<Command, String> {
    let mut args = ServeArgs::default();
    while let Some(arg) = raw.next() {
        let (flag, inline) = split_flag(&arg);
        let mut value = || flag_value(&flag, inline, &mut raw);
        match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help(SERVE_USAGE)),
            "--url" => args.url = value()?,
            "--secret" => args.secret = Some(value()?),
            "--port" => {
                let v = value()?;
                args.port = v
                    .parse()
                    .map_err(|_| format!("--port expects a port number, got {v:?}"))?;
            }
            "--api-key" => args.api_key = Some(non_empty(&flag, value()?)?),
            "--agent-id" => args.agent_id = non_empty(&flag, value()?)?,
            "--no-speech" if inline.is_none() => args.speech = false,
            _ => return Err(format!("unknown argument {arg:?} (see serve --help)")),
        }
    }
    Ok(Command::Serve(args))
}

/// Parses the arguments after the program name. Accepts `--flag value` and `--flag=value`.
pub fn parse(raw: impl IntoIterator<Item = String>) -> Result<Command, String> {
    let mut args = Args::default();
    let mut raw = raw.into_iter().peekable();
    if raw.peek().is_some_and(|first| first == "serve") {
        raw.next();
        return parse_serve(raw);
    }
    while let Some(arg) = raw.next() {
        let (flag, inline) = split_flag(&arg);
        let mut value = || flag_value(&flag, inline, &mut raw);
        match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help(USAGE)),
            "--url" => args.url = value()?,
            "--secret" => args.secret = Some(value()?),
            "--conversation" => args.conversation = Some(non_empty(&flag, value()?)?),
            "--interrupt-after" => args.interrupt_after = Some(word_count(&value()?)?),
            "--script" => args.script = Some(PathBuf::from(non_empty(&flag, value()?)?)),
            "--turn-timeout" => args.turn_timeout = seconds(&value()?)?,
            "--no-session-start" if inline.is_none() => args.session_start = false,
            _ => return Err(format!("unknown argument {arg:?} (see --help)")),
        }
    }
    Ok(Command::Run(args))
}

fn non_empty(flag: &str, value: String) -> Result<String, String> {
    if value.trim().is_empty() {
        Err(format!("{flag} must not be empty"))
    } else {
        Ok(value)
    }
}

fn word_count(value: &str) -> Result<usize, String> {
    match value.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!(
            "--interrupt-after expects a number of words (1 or more), got {value:?}"
        )),
    }
}

fn seconds(value: &str) -> Result<Duration, String> {
    match value.parse::<f64>() {
        // The upper bound keeps Duration::from_secs_f64 from panicking on huge values.
        Ok(s) if s > 0.0 && s <= 86_400.0 => Ok(Duration::from_secs_f64(s)),
        _ => Err(format!(
            "--turn-timeout expects seconds between 0 and 86400, got {value:?}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(list: &[&str]) -> Result<Command, String> {
        parse(list.iter().map(|s| s.to_string()))
    }

    #[test]
    fn defaults() {
        assert_eq!(run(&[]), Ok(Command::Run(Args::default())));
        assert_eq!(Args::default().turn_timeout, Duration::from_secs(30));
    }

    #[test]
    fn every_flag_in_both_spellings() {
        let expected = Args {
            url: "https://x.example/agent".into(),
            secret: Some("s=3".into()),
            conversation: Some("c1".into()),
            interrupt_after: Some(3),
            script: Some(PathBuf::from("turns.txt")),
            turn_timeout: Duration::from_millis(1500),
            session_start: false,
        };
        let spaced = run(&[
            "--url",
            "https://x.example/agent",
            "--secret",
            "s=3",
            "--conversation",
            "c1",
            "--interrupt-after",
            "3",
            "--script",
            "turns.txt",
            "--turn-timeout",
            "1.5",
            "--no-session-start",
        ]);
        assert_eq!(spaced, Ok(Command::Run(expected.clone())));
        let inline = run(&[
            "--url=https://x.example/agent",
            "--secret=s=3",
            "--conversation=c1",
            "--interrupt-after=3",
            "--script=turns.txt",
            "--turn-timeout=1.5",
            "--no-session-start",
        ]);
        assert_eq!(inline, Ok(Command::Run(expected)));
    }

    #[test]
    fn help_wins() {
        assert_eq!(run(&["--url", "x", "--help"]), Ok(Command::Help(USAGE)));
        assert_eq!(run(&["-h"]), Ok(Command::Help(USAGE)));
        assert_eq!(run(&["serve", "--help"]), Ok(Command::Help(SERVE_USAGE)));
    }

    #[test]
    fn serve_flags() {
        assert_eq!(run(&["serve"]), Ok(Command::Serve(ServeArgs::default())));
        assert_eq!(
            run(&[
                "serve",
                "--url=http://127.0.0.1:9000",
                "--secret",
                "s",
                "--port",
                "4000",
                "--api-key",
                "k",
                "--agent-id=a1",
                "--no-speech",
            ]),
            Ok(Command::Serve(ServeArgs {
                url: "http://127.0.0.1:9000".into(),
                secret: Some("s".into()),
                port: 4000,
                api_key: Some("k".into()),
                agent_id: "a1".into(),
                speech: false,
            }))
        );
        for bad in [
            &["serve", "--port", "x"][..],
            &["serve", "--port", "70000"],
            &["serve", "--agent-id", ""],
            &["serve", "--script", "f"],
            &["serve", "--no-speech=1"],
        ] {
            assert!(run(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        for bad in [
            &["--url"][..],
            &["--interrupt-after", "0"],
            &["--interrupt-after", "-2"],
            &["--interrupt-after", "many"],
            &["--turn-timeout", "0"],
            &["--turn-timeout", "NaN"],
            &["--turn-timeout", "1e300"],
            &["--script", ""],
            &["--no-session-start=yes"],
            &["--bogus"],
            &["positional"],
        ] {
            assert!(run(bad).is_err(), "{bad:?}");
        }
    }
}
