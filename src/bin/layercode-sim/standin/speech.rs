//! The agent's voice: Debian's `espeak-ng` turns each sentence into speech, sent to the browser
//! as `response.audio` (base64 16-bit PCM, mono, 16 kHz, as Layercode sends it), so the SDK
//! plays it, moves the agent's level meter and stops it on barge-in exactly as with Layercode.
//! Without `espeak-ng` the agent is silent and the page still shows its words.

use std::io::{Read, Write};
use std::process::{Command, Stdio};

use base64::Engine as _;

/// Layercode's agent audio rate.
pub const SAMPLE_RATE: u32 = 16_000;
/// Samples per `response.audio` message (a quarter of a second).
const SAMPLES_PER_MESSAGE: usize = 4_000;
/// espeak-ng's output is read up to this size (about five minutes of 22 kHz speech).
const MAX_WAV_BYTES: u64 = 16 * 1024 * 1024;

/// Whether `espeak-ng` can be run.
pub fn available() -> bool {
    Command::new("espeak-ng")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// The base64 contents of the `response.audio` messages that speak `text`, in order.
pub fn synthesize(text: &str) -> Result<Vec<String>, String> {
    let wav = espeak(text)?;
    let (rate, samples) = parse_wav(&wav)?;
    let samples = resample(&samples, rate, SAMPLE_RATE);
    Ok(samples
        .chunks(SAMPLES_PER_MESSAGE)
        .map(|chunk| {
            let bytes: Vec<u8> = chunk.iter().flat_map(|s| s.to_le_bytes()).collect();
            base64::engine::general_purpose::STANDARD.encode(bytes)
        })
        .collect())
}

fn espeak(text: &str) -> Result<Vec<u8>, String> {
    let mut child = Command::new("espeak-ng")
        // Text on stdin (never an argument a leading dash could turn into an option), WAV out.
        .args(["--stdout", "-s", "170"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run espeak-ng: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(text.as_bytes())
            .map_err(|e| format!("espeak-ng: {e}"))?;
    }
    let mut wav = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        stdout
            .take(MAX_WAV_BYTES)
            .read_to_end(&mut wav)
            .map_err(|e| format!("espeak-ng: {e}"))?;
    }
    let status = child.wait().map_err(|e| format!("espeak-ng: {e}"))?;
    if !status.success() {
        return Err(format!("espeak-ng exited with {status}"));
    }
    Ok(wav)
}

/// The sample rate and the mono 16-bit samples of a PCM WAV file. espeak-ng writes its stream
/// with placeholder sizes, so the data chunk runs to the end of the file.
pub fn parse_wav(wav: &[u8]) -> Result<(u32, Vec<i16>), String> {
    if wav.len() < 12 || &wav[..4] != b"RIFF" || &wav[8..12] != b"WAVE" {
        return Err("espeak-ng did not write a WAV file".into());
    }
    let mut at = 12;
    let mut rate = None;
    while at + 8 <= wav.len() {
        let id = &wav[at..at + 4];
        let size = u32::from_le_bytes([wav[at + 4], wav[at + 5], wav[at + 6], wav[at + 7]]);
        let body = at + 8;
        if id == b"fmt " && body + 16 <= wav.len() {
            let field = |o: usize| u16::from_le_bytes([wav[body + o], wav[body + o + 1]]);
            let (format, channels, bits) = (field(0), field(2), field(14));
            if format != 1 || channels != 1 || bits != 16 {
                return Err("espeak-ng's WAV is not 16-bit mono PCM".into());
            }
            rate = Some(u32::from_le_bytes([
                wav[body + 4],
                wav[body + 5],
                wav[body + 6],
                wav[body + 7],
            ]));
        } else if id == b"data" {
            let rate = rate.ok_or("WAV data before its format")?;
            let samples = wav[body..]
                .chunks_exact(2)
                .map(|pair| i16::from_le_bytes([pair[0], pair[1]]))
                .collect();
            return Ok((rate, samples));
        }
        at = body.saturating_add(usize::try_from(size).unwrap_or(usize::MAX));
    }
    Err("no audio in espeak-ng's WAV".into())
}

/// Linear-interpolation resampling: enough for a synthetic voice.
pub fn resample(samples: &[i16], from: u32, to: u32) -> Vec<i16> {
    if from == to || samples.is_empty() || from == 0 {
        return samples.to_vec();
    }
    let out_len = (samples.len() as u64 * u64::from(to) / u64::from(from)) as usize;
    let step = f64::from(from) / f64::from(to);
    (0..out_len)
        .map(|i| {
            let position = i as f64 * step;
            let index = position as usize;
            let fraction = position - index as f64;
            let a = f64::from(samples[index.min(samples.len() - 1)]);
            let b = f64::from(samples[(index + 1).min(samples.len() - 1)]);
            (a + (b - a) * fraction).round() as i16
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wav(rate: u32, samples: &[i16]) -> Vec<u8> {
        let mut out = b"RIFF\0\0\0\0WAVEfmt ".to_vec();
        out.extend_from_slice(&16u32.to_le_bytes());
        out.extend_from_slice(&1u16.to_le_bytes()); // PCM
        out.extend_from_slice(&1u16.to_le_bytes()); // mono
        out.extend_from_slice(&rate.to_le_bytes());
        out.extend_from_slice(&(rate * 2).to_le_bytes());
        out.extend_from_slice(&2u16.to_le_bytes());
        out.extend_from_slice(&16u16.to_le_bytes());
        out.extend_from_slice(b"data\xff\xff\xff\x7f"); // espeak-ng's streaming placeholder
        for s in samples {
            out.extend_from_slice(&s.to_le_bytes());
        }
        out
    }

    #[test]
    fn a_streamed_wav_is_read_to_its_end() {
        assert_eq!(
            parse_wav(&wav(22_050, &[1, -2, 3])),
            Ok((22_050, vec![1, -2, 3]))
        );
        assert!(parse_wav(b"RIFF....WAVX").is_err());
        assert!(parse_wav(b"").is_err());
    }

    #[test]
    fn resampling_keeps_the_duration_and_the_shape() {
        let ramp: Vec<i16> = (0..22_050).map(|i| (i % 1000) as i16).collect();
        let out = resample(&ramp, 22_050, 16_000);
        assert_eq!(out.len(), 16_000);
        assert_eq!(out[0], 0);
        assert_eq!(resample(&[5, 6], 16_000, 16_000), vec![5, 6]);
        assert!(resample(&[], 22_050, 16_000).is_empty());
    }
}
