//! The developer mock model (`src/bin/mock-gemini.rs`, what `MOCK_GEMINI=1 ./scripts/dev.sh`
//! runs), started as its own process on a port the kernel picks, killed when dropped.

/// The running developer mock; `url` is its base URL (`http://127.0.0.1:PORT`), for Gemini's
/// `GEMINI_API_BASE_URL` or, with `/v1`, an openai entry's `base_url`.
pub struct DevMock {
    child: std::process::Child,
    pub url: String,
}

impl DevMock {
    pub fn start() -> DevMock {
        use std::io::BufRead;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_mock-gemini"))
            .args(["--port", "0"])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start mock-gemini");
        let mut stderr = std::io::BufReader::new(child.stderr.take().expect("piped stderr"));
        let mut first = String::new();
        stderr.read_line(&mut first).expect("read its first line");
        std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
        let url = first.trim().rsplit(' ').next().unwrap().to_string();
        assert!(url.starts_with("http://127.0.0.1:"), "{first}");
        DevMock { child, url }
    }
}

impl Drop for DevMock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
