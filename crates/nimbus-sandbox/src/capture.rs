//! Collects an environment's stdout and stderr (one pipe) into log events. A reader task
//! keeps the pipe drained; the invoke path can also drain it synchronously, because a
//! runtime writes its output before it posts a response, so everything the function printed
//! is in the pipe by the time the response arrives.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex};

use nimbus_logs::LogSink;
use nimbus_model::logging::{line_level, LogLevel};
use tokio::io::unix::AsyncFd;

/// AWS returns at most this much of an invocation's log with `LogType: Tail`.
pub const TAIL_BYTES: usize = 4096;
/// CloudWatch's largest event; longer unterminated output is cut into events this size.
const MAX_EVENT_BYTES: usize = 256 * 1024;

/// One read from the pipe.
const READ_BYTES: usize = 16 * 1024;
/// Reads per wake-up of the capture task before it lets the other tasks run (256 KiB).
const RUN_READS: usize = 16;
/// Reads of a drain: what a full pipe holds (1 MiB at most, `fs.pipe-max-size`'s default),
/// so a drain takes what was written before it began and is not held by a function that
/// keeps writing.
const DRAIN_READS: usize = 64;

/// What a bounded read of the pipe left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pipe {
    /// Nothing more to read now.
    Empty,
    /// Read as much as allowed; more may be waiting.
    More,
    /// The writer closed it.
    Closed,
}

pub struct OutputCapture {
    fd: AsyncFd<OwnedFd>,
    state: Mutex<CaptureState>,
}

#[derive(Default)]
struct CaptureState {
    /// Where events go; None while a prestarted runtime waits for its function (its
    /// output then belongs to no log stream and is dropped).
    sink: Option<LogSink>,
    /// With JSON logs, the function's application log level: lines below it are dropped
    /// (their level read by [`line_level`]).
    min_level: Option<LogLevel>,
    partial: Vec<u8>,
    tail: Vec<u8>,
    eof: bool,
    /// `--trace-starts`: sandbox-init's timings line goes to the server's log, not the
    /// function's (the first such line only).
    divert_timings: bool,
}

impl CaptureState {
    fn push_tail(&mut self, line: &str) {
        self.tail.extend_from_slice(line.as_bytes());
        self.tail.push(b'\n');
        if self.tail.len() > 2 * TAIL_BYTES {
            let cut = self.tail.len() - TAIL_BYTES;
            self.tail.drain(..cut);
        }
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl OutputCapture {
    /// Takes the read end of the output pipe (made non-blocking here).
    pub fn new(read_end: OwnedFd, sink: Option<LogSink>, min_level: Option<LogLevel>) -> std::io::Result<Arc<OutputCapture>> {
        rustix::io::ioctl_fionbio(&read_end, true)?;
        // SAFETY: an OwnedFd keeps its descriptor open and unchanged for as long as it lives,
        // and the AsyncFd owns it.
        let fd = unsafe { AsyncFd::register_with_interest(read_end, tokio::io::Interest::READABLE) }
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(Arc::new(OutputCapture { fd, state: Mutex::new(CaptureState { sink, min_level, ..Default::default() }) }))
    }

    /// Directs output to a log stream from now on (when a prestarted runtime is assigned),
    /// filtered by `min_level`. Output written before is dropped.
    pub fn set_sink(&self, sink: LogSink, min_level: Option<LogLevel>) {
        let mut st = self.lock();
        self.read_available(&mut st, DRAIN_READS);
        st.partial.clear();
        st.tail.clear();
        st.sink = Some(sink);
        st.min_level = min_level;
    }

    /// Sends sandbox-init's timings line (its first line starting `sandbox-init: timings:`)
    /// to the server's log instead of the function's.
    pub fn divert_timings(&self) {
        self.lock().divert_timings = true;
    }

    /// Writes a service line (START, END, REPORT…) into the stream, in order with output.
    pub fn service_line(&self, line: String) {
        let mut st = self.lock();
        st.push_tail(&line);
        if let Some(sink) = &st.sink {
            sink.emit(now_ms(), line);
        }
    }

    /// [`OutputCapture::service_line`] for a line the function's log settings may leave out.
    pub fn service_line_opt(&self, line: Option<String>) {
        if let Some(line) = line {
            self.service_line(line);
        }
    }

    /// Starts a new tail window (at an invocation's START).
    pub fn reset_tail(&self) {
        self.lock().tail.clear();
    }

    /// The last 4 KB of what was logged since the last reset.
    pub fn tail(&self) -> String {
        let st = self.lock();
        let start = st.tail.len().saturating_sub(TAIL_BYTES);
        let mut s = &st.tail[start..];
        // Do not start in the middle of a UTF-8 sequence.
        while !s.is_empty() && (s[0] & 0xC0) == 0x80 {
            s = &s[1..];
        }
        String::from_utf8_lossy(s).into_owned()
    }

    /// Reads whatever is in the pipe now; with `flush_partial`, an unterminated last line
    /// becomes an event too.
    pub fn drain(&self, flush_partial: bool) {
        let mut st = self.lock();
        self.read_available(&mut st, DRAIN_READS);
        if flush_partial && !st.partial.is_empty() {
            let line = std::mem::take(&mut st.partial);
            self.emit_output(&mut st, &line);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CaptureState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reads what is in the pipe, at most `max_reads` times [`READ_BYTES`]: a function that
    /// writes without pause can fill the pipe as fast as its lines are turned into events,
    /// and an unbounded loop would then hold its thread (an API worker) for as long as the
    /// function prints.
    fn read_available(&self, st: &mut CaptureState, max_reads: usize) -> Pipe {
        let mut buf = [0u8; READ_BYTES];
        let mut reads = 0;
        while reads < max_reads {
            match rustix::io::read(self.fd.get_ref().as_fd(), &mut buf) {
                Ok(0) => {
                    st.eof = true;
                    return Pipe::Closed;
                }
                Ok(n) => {
                    reads += 1;
                    self.accept(st, &buf[..n]);
                }
                Err(rustix::io::Errno::INTR) => continue,
                // EAGAIN, or the pipe is gone
                Err(_) if st.eof => return Pipe::Closed,
                Err(_) => return Pipe::Empty,
            }
        }
        Pipe::More
    }

    fn accept(&self, st: &mut CaptureState, mut data: &[u8]) {
        while let Some(pos) = data.iter().position(|&b| b == b'\n') {
            let line = if st.partial.is_empty() {
                data[..pos].to_vec()
            } else {
                let mut l = std::mem::take(&mut st.partial);
                l.extend_from_slice(&data[..pos]);
                l
            };
            self.emit_output(st, &line);
            data = &data[pos + 1..];
        }
        st.partial.extend_from_slice(data);
        while st.partial.len() >= MAX_EVENT_BYTES {
            let rest = st.partial.split_off(MAX_EVENT_BYTES);
            let line = std::mem::replace(&mut st.partial, rest);
            self.emit_output(st, &line);
        }
    }

    fn emit_output(&self, st: &mut CaptureState, line: &[u8]) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        // Runtimes write a multi-line message as one line with `\r` for newlines (AWS's
        // convention), so one console call stays one event.
        let message = String::from_utf8_lossy(line).replace('\r', "\n");
        if st.divert_timings {
            if let Some(steps) = message.strip_prefix("sandbox-init: timings:") {
                st.divert_timings = false;
                tracing::info!(target: "nimbus_sandbox::starts", "sandbox-init:{steps}");
                return;
            }
        }
        if st.min_level.is_some_and(|min| line_level(&message) < min) {
            return;
        }
        st.push_tail(&message);
        if let Some(sink) = &st.sink {
            sink.emit(now_ms(), message);
        }
    }

    /// Keeps the pipe drained until the process closes it, giving its thread back to the
    /// other tasks after every [`RUN_READS`] reads.
    pub async fn run(self: Arc<Self>) {
        loop {
            let Ok(mut guard) = self.fd.readable().await else { return };
            let read = {
                let mut st = self.lock();
                self.read_available(&mut st, RUN_READS)
            };
            match read {
                Pipe::Closed => {
                    self.drain(true);
                    return;
                }
                Pipe::Empty => guard.clear_ready(),
                // Still readable: after the others' turn, read on.
                Pipe::More => {
                    drop(guard);
                    tokio::task::yield_now().await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    /// A pipe of 1 MiB holding `bytes` empty lines: its read end, a second descriptor of
    /// that read end to ask how much is left in it, and the write end (kept open).
    fn full_pipe(bytes: usize) -> (OwnedFd, OwnedFd, OwnedFd) {
        let (read, write) = rustix::pipe::pipe().unwrap();
        let size = rustix::pipe::fcntl_setpipe_size(&write, 1 << 20).unwrap();
        assert!(size >= bytes, "pipe of {size} bytes");
        let lines = vec![b'\n'; bytes];
        assert_eq!(rustix::io::write(&write, &lines).unwrap(), bytes);
        let probe = rustix::io::dup(&read).unwrap();
        (read, probe, write)
    }

    fn left(probe: &OwnedFd) -> u64 {
        rustix::io::ioctl_fionread(probe.as_fd()).unwrap()
    }

    #[test]
    fn a_read_takes_at_most_what_it_is_allowed() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let _in = rt.enter();
        let (read, probe, _write) = full_pipe(1 << 20);
        let capture = OutputCapture::new(read, None, None).unwrap();
        let mut st = capture.lock();
        assert_eq!(capture.read_available(&mut st, 4), Pipe::More);
        assert_eq!(left(&probe), (1 << 20) - 4 * READ_BYTES as u64);
        assert_eq!(capture.read_available(&mut st, DRAIN_READS), Pipe::Empty, "a drain takes a full pipe");
        assert_eq!(left(&probe), 0);
    }

    /// The capture task gives its thread back after its share of reads: another task on
    /// the same thread gets a turn while the pipe still holds most of a function's output
    /// (before, the task read until the pipe was empty, however long the function kept it
    /// full).
    #[test]
    fn the_capture_lets_other_tasks_run_between_its_reads() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let (read, probe, _write) = full_pipe(1 << 20);
        let seen = rt.block_on(async move {
            let capture = OutputCapture::new(read, None, None).unwrap();
            tokio::spawn(capture.run());
            // This task's turns: the first one after the capture began reading.
            for _ in 0..100_000 {
                tokio::task::yield_now().await;
                let now = left(&probe);
                if now < 1 << 20 {
                    return now;
                }
            }
            panic!("the capture never read");
        });
        assert_eq!((1 << 20) - seen, (RUN_READS * READ_BYTES) as u64, "read before the other task's turn");
    }
}
