//! A progress spinner on stderr while we wait for the first word, so a slow model does not look
//! like a hung program. Only on a terminal: in pipes and logs it would be noise.

use std::io::{self, IsTerminal, Write};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

const FRAMES: [char; 4] = ['|', '/', '-', '\\'];
const TICK: Duration = Duration::from_millis(200);

/// Runs until [`Spinner::stop`] (or drop), then erases itself.
pub struct Spinner {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Spinner {
    /// Starts spinning at the cursor (a no-op unless stderr is a terminal).
    pub fn start() -> Spinner {
        if !io::stderr().is_terminal() {
            return Spinner {
                stop: None,
                thread: None,
            };
        }
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = thread::spawn(move || {
            let mut drawn = false;
            for frame in FRAMES.iter().cycle() {
                // A message or a dropped sender both mean stop.
                if stopped.recv_timeout(TICK) != Err(RecvTimeoutError::Timeout) {
                    break;
                }
                // Draw the frame, then step back onto it so the next one overwrites it.
                eprint!("{frame}\u{8}");
                drawn = true;
            }
            if drawn {
                eprint!(" \u{8}");
            }
            let _ = io::stderr().flush();
        });
        Spinner {
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Stops and erases the spinner; returns once it is gone from the screen.
    pub fn stop(&mut self) {
        self.stop.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        self.stop();
    }
}
