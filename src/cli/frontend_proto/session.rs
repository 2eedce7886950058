//! One conversation with a frontend process: the request on its stdin, then its lines on
//! stdout until the result, answering image-config queries on the way; with a deadline,
//! a cap on what it may write, and its stderr forwarded (capped).
//!
//! Three threads move bytes (stdin writer, stdout line reader, stderr forwarder) so that
//! the main loop never blocks on a pipe: it waits on one channel with the deadline, which
//! is how a frontend that hangs, or fills a pipe without reading its own, is still cut off
//! on time. Killing the process group closes the pipes, which ends the threads.

use std::io::{BufRead, Read, Write};
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Context;
use cairn_ir::protocol::{FrontendMessage, FrontendResult, HostMessage};

use super::confine::{self, Confinement};
use super::Limits;

enum Event {
    Line(Vec<u8>),
    TooMuch,
    Eof,
    ReadError(std::io::Error),
}

/// Runs `exe` with `request` as its first line and returns its result message; `answer`
/// turns each query into the message sent back.
pub fn converse(
    exe: &Path,
    request: &HostMessage,
    confinement: &Confinement,
    limits: &Limits,
    answer: &dyn Fn(&FrontendMessage) -> Option<HostMessage>,
) -> anyhow::Result<FrontendResult> {
    let name = exe.display();
    let mut child = confine::spawn(exe, confinement).with_context(|| format!("Cannot start frontend `{name}`"))?;
    let (stdin, stdout, stderr) = (child.stdin.take(), child.stdout.take(), child.stderr.take());
    let (stdin, stdout, stderr) = (stdin.expect("piped"), stdout.expect("piped"), stderr.expect("piped"));
    let (to_frontend, lines_in) = mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || write_lines(stdin, lines_in));
    let (events, from_frontend) = mpsc::channel::<Event>();
    let max = limits.max_output;
    std::thread::spawn(move || read_lines(stdout, max, events));
    let max_stderr = limits.max_stderr;
    std::thread::spawn(move || forward_stderr(stderr, max_stderr));

    let deadline = Instant::now() + limits.timeout;
    let send = |m: &HostMessage| {
        let mut line = serde_json::to_vec(m).expect("protocol messages serialize");
        line.push(b'\n');
        // A frontend that has exited no longer reads: what it wrote still decides.
        let _ = to_frontend.send(line);
    };
    send(request);
    let mut n = 0usize;
    let outcome = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let event = match from_frontend.recv_timeout(left) {
            Ok(e) => e,
            Err(_) => {
                break Err(anyhow::anyhow!(
                    "Frontend `{name}` did not finish within {} s (raise the limit with `--frontend-timeout SECONDS` or CAIRN_FRONTEND_TIMEOUT)",
                    limits.timeout.as_secs_f64()
                ))
            }
        };
        let line = match event {
            Event::Line(l) => l,
            Event::TooMuch => {
                break Err(anyhow::anyhow!(
                    "Frontend `{name}` wrote more than {} bytes on stdout (the limit; `--frontend-max-output BYTES`)",
                    limits.max_output
                ))
            }
            Event::ReadError(e) => break Err(anyhow::anyhow!("Cannot read frontend `{name}`'s output: {e}")),
            Event::Eof => {
                let status = child.wait().map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
                break Err(anyhow::anyhow!("Frontend `{name}` exited ({status}) without a result message"));
            }
        };
        n += 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let msg: FrontendMessage = match serde_json::from_slice(&line) {
            Ok(m) => m,
            Err(e) => {
                break Err(anyhow::anyhow!(
                    "Frontend `{name}` wrote an invalid message on line {n} of its output: {e}: `{}`",
                    excerpt(&line)
                ))
            }
        };
        match msg {
            FrontendMessage::Result(r) => break Ok(r),
            query => {
                if let Some(reply) = answer(&query) {
                    send(&reply);
                }
            }
        }
    };
    drop(to_frontend);
    match &outcome {
        // A frontend that answered gets a moment to exit, then goes like the others.
        Ok(_) => wait_briefly(&mut child),
        Err(_) => confine::kill(&mut child),
    }
    outcome
}

fn wait_briefly(child: &mut std::process::Child) {
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    confine::kill(child);
}

/// The start of a bad line, printable.
fn excerpt(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(&line[..line.len().min(120)]);
    let text = text.trim_end().escape_debug().to_string();
    if line.len() > 120 {
        format!("{text}…")
    } else {
        text
    }
}

fn write_lines(mut stdin: std::process::ChildStdin, lines: mpsc::Receiver<Vec<u8>>) {
    for line in lines {
        if stdin.write_all(&line).and_then(|()| stdin.flush()).is_err() {
            return;
        }
    }
}

/// Sends each line of `out` as an event, and `TooMuch` as soon as more than `max` bytes
/// came (the rest is never read: the process is killed).
fn read_lines(out: std::process::ChildStdout, max: u64, events: mpsc::Sender<Event>) {
    let mut r = std::io::BufReader::new(out).take(max + 1);
    let mut total = 0u64;
    loop {
        let mut line = Vec::new();
        match r.read_until(b'\n', &mut line) {
            Ok(0) => {
                let _ = events.send(Event::Eof);
                return;
            }
            Ok(k) => {
                total += k as u64;
                if total > max {
                    let _ = events.send(Event::TooMuch);
                    return;
                }
                if events.send(Event::Line(line)).is_err() {
                    return;
                }
            }
            Err(e) => {
                let _ = events.send(Event::ReadError(e));
                return;
            }
        }
    }
}

/// Copies the frontend's stderr to cairn's, each line marked, up to `max` bytes; the rest
/// is read and dropped (a frontend must never block on a full stderr pipe).
fn forward_stderr(err: std::process::ChildStderr, max: u64) {
    let mut r = std::io::BufReader::new(err);
    let mut shown = 0u64;
    let mut line = Vec::new();
    loop {
        line.clear();
        match r.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(k) => {
                if shown <= max {
                    shown += k as u64;
                    let text = String::from_utf8_lossy(&line);
                    if shown > max {
                        eprintln!("frontend: … (stderr past {max} bytes not shown)");
                    } else {
                        eprintln!("frontend: {}", text.trim_end());
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn excerpts_are_short_and_printable() {
        assert_eq!(super::excerpt(b"abc\x01\n"), "abc\\u{1}");
        assert!(super::excerpt(&[b'x'; 500]).ends_with('…'));
    }
}
