//! The on-disk log store: `<root>/<hex group>/<hex stream>.jsonl`, one event per line, and
//! an in-memory index of groups and streams rebuilt from the files at start.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};

use crate::{Command, FilterPattern, LogSink};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredEvent {
    #[serde(rename = "t")]
    pub timestamp: i64,
    #[serde(rename = "i")]
    pub ingestion_time: i64,
    #[serde(rename = "m")]
    pub message: String,
}

#[derive(Debug, Clone, Default)]
pub struct StreamInfo {
    pub name: String,
    pub creation_time: i64,
    pub first_event: i64,
    pub last_event: i64,
    pub last_ingestion: i64,
    pub stored_bytes: u64,
}

#[derive(Debug, Clone, Default)]
pub struct GroupInfo {
    pub name: String,
    pub creation_time: i64,
    pub stored_bytes: u64,
}

#[derive(Default)]
struct GroupIndex {
    creation_time: i64,
    streams: BTreeMap<String, StreamInfo>,
}

type Index = RwLock<BTreeMap<String, GroupIndex>>;

pub struct LogStore {
    root: PathBuf,
    index: Arc<Index>,
    tx: tokio::sync::mpsc::UnboundedSender<Command>,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn encode(name: &str) -> String {
    name.bytes().map(|b| format!("{b:02x}")).collect()
}

fn decode(hex: &str) -> Option<String> {
    let bytes: Option<Vec<u8>> = (0..hex.len() / 2).map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()).collect();
    String::from_utf8(bytes?).ok()
}

impl LogStore {
    /// Opens the store under `root`, indexes what is there, and starts the writer thread.
    pub fn open(root: &Path) -> std::io::Result<Arc<LogStore>> {
        std::fs::create_dir_all(root)?;
        let index = Arc::new(RwLock::new(scan(root)?));
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let writer = Writer { root: root.to_path_buf(), index: index.clone(), files: OpenStreams::new(MAX_OPEN_FILES, IDLE_CLOSE) };
        std::thread::Builder::new().name("nimbus-log-writer".into()).spawn(move || writer.run(rx))?;
        Ok(Arc::new(LogStore { root: root.to_path_buf(), index, tx }))
    }

    pub fn sink(&self, group: &str, stream: &str) -> LogSink {
        LogSink { tx: self.tx.clone(), group: group.into(), stream: stream.into() }
    }

    /// Waits until everything sent before this call is written.
    pub fn flush(&self) {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        if self.tx.send(Command::Flush(tx)).is_ok() {
            let _ = rx.recv_timeout(std::time::Duration::from_secs(5));
        }
    }

    pub fn groups(&self, prefix: &str) -> Vec<GroupInfo> {
        let index = self.index.read().unwrap_or_else(|p| p.into_inner());
        index
            .iter()
            .filter(|(name, _)| name.starts_with(prefix))
            .map(|(name, g)| GroupInfo {
                name: name.clone(),
                creation_time: g.creation_time,
                stored_bytes: g.streams.values().map(|s| s.stored_bytes).sum(),
            })
            .collect()
    }

    /// The streams of a group, or None if the group does not exist.
    pub fn streams(&self, group: &str) -> Option<Vec<StreamInfo>> {
        let index = self.index.read().unwrap_or_else(|p| p.into_inner());
        index.get(group).map(|g| g.streams.values().cloned().collect())
    }

    /// One page of a stream's events within `[start, end)` (as GetLogEvents numbers them:
    /// by position among those events), at most `limit` events and [`PAGE_BYTES`]: read from
    /// disk line by line, so a query holds no more than its page whatever the stream's size.
    /// None if the stream does not exist.
    pub fn stream_page(
        &self,
        group: &str,
        stream: &str,
        start: Option<i64>,
        end: Option<i64>,
        from: Cursor,
        limit: usize,
    ) -> Option<StreamPage> {
        self.flush();
        {
            let index = self.index.read().unwrap_or_else(|p| p.into_inner());
            index.get(group)?.streams.get(stream)?;
        }
        let events = EventLines::open(&self.stream_path(group, stream))
            .map(|(_, e)| e)
            .filter(|e| start.is_none_or(|t| e.timestamp >= t) && end.is_none_or(|t| e.timestamp < t));
        Some(page_of(events, from, limit, PAGE_BYTES))
    }

    /// One page of the events of a group's streams (all, those named, or those with a name
    /// prefix) that match `pattern` within `[start, end]`, in time order, after `after`: at
    /// most `limit` events and [`PAGE_BYTES`], and where the next page starts if there is
    /// more. Streams are read one at a time, line by line, keeping only the best page so far,
    /// so memory stays within a page whatever the group's size. None if the group does not
    /// exist.
    #[allow(clippy::too_many_arguments)]
    pub fn filter_page(
        &self,
        group: &str,
        streams: Option<&[String]>,
        prefix: Option<&str>,
        start: Option<i64>,
        end: Option<i64>,
        pattern: &FilterPattern,
        after: Option<&Position>,
        limit: usize,
    ) -> Option<FilterPage> {
        self.flush();
        let names: Vec<String> = {
            let index = self.index.read().unwrap_or_else(|p| p.into_inner());
            let g = index.get(group)?;
            g.streams
                .values()
                .filter(|s| streams.is_none_or(|wanted| wanted.contains(&s.name)))
                .filter(|s| prefix.is_none_or(|p| s.name.starts_with(p)))
                .filter(|s| start.is_none_or(|t| s.last_event >= t) && end.is_none_or(|t| s.first_event <= t))
                .map(|s| s.name.clone())
                .collect()
        };
        let mut best = BestPage::new(limit, PAGE_BYTES);
        for name in names {
            for (line, e) in EventLines::open(&self.stream_path(group, &name)) {
                if !(start.is_none_or(|t| e.timestamp >= t) && end.is_none_or(|t| e.timestamp <= t)) {
                    continue;
                }
                let at = Position { timestamp: e.timestamp, stream: name.clone(), line };
                if after.is_some_and(|a| at <= *a) || !pattern.matches(&e.message) {
                    continue;
                }
                best.offer(at, e);
            }
        }
        Some(best.finish())
    }

    /// Removes a whole group (used when its function is deleted is *not* AWS behaviour;
    /// kept for tests and cleanup tools).
    pub fn stream_path(&self, group: &str, stream: &str) -> PathBuf {
        self.root.join(encode(group)).join(format!("{}.jsonl", encode(stream)))
    }
}

/// AWS's cap on the events of one GetLogEvents or FilterLogEvents answer: 1 MB, counting
/// each event as its message's bytes plus 26 (as PutLogEvents counts a batch).
pub const PAGE_BYTES: usize = 1_048_576;

fn event_bytes(e: &StoredEvent) -> usize {
    e.message.len() + 26
}

/// A stream file's events with their line numbers, read one line at a time (lines that do not
/// parse, such as a torn last line after a crash, are skipped but counted).
struct EventLines {
    lines: Option<std::io::Lines<BufReader<File>>>,
    line: u64,
}

impl EventLines {
    fn open(path: &Path) -> EventLines {
        EventLines { lines: File::open(path).ok().map(|f| BufReader::with_capacity(64 * 1024, f).lines()), line: 0 }
    }
}

impl Iterator for EventLines {
    type Item = (u64, StoredEvent);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let text = self.lines.as_mut()?.next()?.ok()?;
            let line = self.line;
            self.line += 1;
            if let Ok(e) = serde_json::from_str(&text) {
                return Some((line, e));
            }
        }
    }
}

/// Where a GetLogEvents page starts or ends, by position among the stream's events in range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cursor {
    /// The first page from the head.
    Head,
    /// The last page (AWS's default without `startFromHead`).
    Tail,
    /// The page starting at this position (a forward token).
    Forward(usize),
    /// The page ending before this position (a backward token).
    Backward(usize),
}

/// One GetLogEvents page: events `[lo, hi)` of the stream's events in range.
#[derive(Debug, Default)]
pub struct StreamPage {
    pub events: Vec<StoredEvent>,
    pub lo: usize,
    pub hi: usize,
}

/// The page of `events` that `from` names, at most `limit` events and `max_bytes` (but at
/// least one event, however large); holds no more than the page while it reads.
fn page_of(events: impl Iterator<Item = StoredEvent>, from: Cursor, limit: usize, max_bytes: usize) -> StreamPage {
    let limit = limit.max(1);
    match from {
        Cursor::Head | Cursor::Forward(_) => {
            let n = if let Cursor::Forward(n) = from { n } else { 0 };
            let (mut out, mut bytes, mut seen) = (Vec::new(), 0, 0);
            for e in events {
                seen += 1;
                if seen <= n {
                    continue;
                }
                if out.len() == limit || (!out.is_empty() && bytes + event_bytes(&e) > max_bytes) {
                    break;
                }
                bytes += event_bytes(&e);
                out.push(e);
            }
            let lo = n.min(seen);
            StreamPage { hi: lo + out.len(), lo, events: out }
        }
        Cursor::Tail | Cursor::Backward(_) => {
            let stop = if let Cursor::Backward(n) = from { n } else { usize::MAX };
            let (mut window, mut bytes, mut seen) = (std::collections::VecDeque::new(), 0, 0);
            for e in events {
                if seen == stop {
                    break;
                }
                seen += 1;
                bytes += event_bytes(&e);
                window.push_back(e);
                while window.len() > limit || (window.len() > 1 && bytes > max_bytes) {
                    if let Some(old) = window.pop_front() {
                        bytes -= event_bytes(&old);
                    }
                }
            }
            StreamPage { lo: seen - window.len(), hi: seen, events: window.into() }
        }
    }
}

/// Where an event sits in FilterLogEvents' order: time, then stream, then line.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub timestamp: i64,
    pub stream: String,
    pub line: u64,
}

/// One FilterLogEvents page, and where the next starts (None: nothing more).
#[derive(Debug, Default)]
pub struct FilterPage {
    pub events: Vec<(Position, StoredEvent)>,
    pub next: Option<Position>,
}

/// The first events in [`Position`] order among those offered, as many as fit in `limit`
/// events and `max_bytes`: a max-heap that drops its last event whenever the page overflows,
/// remembering the earliest one dropped (where the next page starts).
struct BestPage {
    heap: std::collections::BinaryHeap<Ranked>,
    bytes: usize,
    limit: usize,
    max_bytes: usize,
    dropped: Option<Position>,
}

struct Ranked(Position, StoredEvent);

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}
impl Eq for Ranked {}
impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.cmp(&other.0)
    }
}

impl BestPage {
    fn new(limit: usize, max_bytes: usize) -> BestPage {
        BestPage { heap: Default::default(), bytes: 0, limit: limit.max(1), max_bytes, dropped: None }
    }

    fn offer(&mut self, at: Position, e: StoredEvent) {
        if self.dropped.as_ref().is_some_and(|d| at > *d) {
            // Past an event already left for the next page: it cannot be on this one.
            return;
        }
        self.bytes += event_bytes(&e);
        self.heap.push(Ranked(at, e));
        while self.heap.len() > self.limit || (self.heap.len() > 1 && self.bytes > self.max_bytes) {
            let Some(Ranked(at, e)) = self.heap.pop() else { break };
            self.bytes -= event_bytes(&e);
            if self.dropped.as_ref().is_none_or(|d| at < *d) {
                self.dropped = Some(at);
            }
        }
    }

    fn finish(self) -> FilterPage {
        let events = self.heap.into_sorted_vec().into_iter().map(|Ranked(at, e)| (at, e)).collect();
        FilterPage { events, next: self.dropped }
    }
}

fn scan(root: &Path) -> std::io::Result<BTreeMap<String, GroupIndex>> {
    let mut out = BTreeMap::new();
    for g in std::fs::read_dir(root)?.flatten() {
        let Some(group) = g.file_name().to_str().and_then(decode) else { continue };
        let mut gi = GroupIndex { creation_time: i64::MAX, ..Default::default() };
        for s in std::fs::read_dir(g.path())?.flatten() {
            let fname = s.file_name();
            let Some(stream) = fname.to_str().and_then(|n| n.strip_suffix(".jsonl")).and_then(decode) else { continue };
            // Line by line: the index is a few numbers per stream, never the events.
            let mut info: Option<StreamInfo> = None;
            for (_, e) in EventLines::open(&s.path()) {
                let i = info.get_or_insert_with(|| StreamInfo {
                    name: stream.clone(),
                    creation_time: e.ingestion_time,
                    first_event: e.timestamp,
                    last_event: e.timestamp,
                    ..Default::default()
                });
                i.first_event = i.first_event.min(e.timestamp);
                i.last_event = i.last_event.max(e.timestamp);
                i.last_ingestion = e.ingestion_time;
                i.stored_bytes += e.message.len() as u64;
            }
            let Some(info) = info else { continue };
            gi.creation_time = gi.creation_time.min(info.creation_time);
            gi.streams.insert(stream, info);
        }
        if !gi.streams.is_empty() {
            out.insert(group, gi);
        }
    }
    Ok(out)
}

struct Writer {
    root: PathBuf,
    index: Arc<Index>,
    files: OpenStreams<BufWriter<File>>,
}

/// At most this many stream files are kept open between batches.
const MAX_OPEN_FILES: usize = 64;
/// A stream file not written for this long is closed: every environment writes a stream of
/// its own, so under churn the streams written recently are few and the ones ever written
/// are many (kept open, each was an fd and a 16 KiB buffer until 256 piled up).
const IDLE_CLOSE: std::time::Duration = std::time::Duration::from_secs(10);

/// The writer's open stream files, each with when it was last written; `sweep` closes the
/// idle ones and the least recently written beyond a cap.
struct OpenStreams<F> {
    files: HashMap<(Arc<str>, Arc<str>), (F, std::time::Instant)>,
    max_open: usize,
    idle_close: std::time::Duration,
}

impl<F> OpenStreams<F> {
    fn new(max_open: usize, idle_close: std::time::Duration) -> Self {
        OpenStreams { files: HashMap::new(), max_open, idle_close }
    }

    /// The open file of `key`, opened by `open` if it is not; marked written at `now`.
    fn get_or_open<E>(
        &mut self,
        key: (Arc<str>, Arc<str>),
        now: std::time::Instant,
        open: impl FnOnce() -> Result<F, E>,
    ) -> Result<&mut F, E> {
        let entry = match self.files.entry(key) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => e.insert((open()?, now)),
        };
        entry.1 = now;
        Ok(&mut entry.0)
    }

    fn values_mut(&mut self) -> impl Iterator<Item = &mut F> {
        self.files.values_mut().map(|(f, _)| f)
    }

    /// Closes (drops) the files idle since before `now - idle_close`, then the least
    /// recently written ones beyond `max_open`.
    fn sweep(&mut self, now: std::time::Instant) {
        self.files.retain(|_, (_, at)| now.saturating_duration_since(*at) < self.idle_close);
        if self.files.len() > self.max_open {
            let mut ages: Vec<std::time::Instant> = self.files.values().map(|(_, at)| *at).collect();
            ages.sort_unstable_by(|a, b| b.cmp(a));
            let keep_from = ages[self.max_open - 1];
            let mut room = self.max_open;
            // The newest `max_open`; among equal times, whichever come first.
            self.files.retain(|_, (_, at)| {
                let keep = *at >= keep_from && room > 0;
                room -= usize::from(keep);
                keep
            });
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.files.len()
    }
}
/// How long the writer waits after a batch before taking the next one.
const BATCH_PAUSE: std::time::Duration = std::time::Duration::from_millis(2);

impl Writer {
    fn run(mut self, mut rx: tokio::sync::mpsc::UnboundedReceiver<Command>) {
        while let Some(cmd) = rx.blocking_recv() {
            let mut waiters = Vec::new();
            self.handle(cmd, &mut waiters);
            while let Ok(cmd) = rx.try_recv() {
                self.handle(cmd, &mut waiters);
            }
            for w in self.files.values_mut() {
                if let Err(e) = w.flush() {
                    tracing::warn!("log write failed: {e}");
                }
            }
            self.files.sweep(std::time::Instant::now());
            for w in waiters {
                let _ = w.send(());
            }
            // Batch: a busy server would otherwise wake this thread for every line, a
            // context switch per invocation; a short nap lets lines pile up instead.
            std::thread::sleep(BATCH_PAUSE);
        }
    }

    fn handle(&mut self, cmd: Command, waiters: &mut Vec<std::sync::mpsc::SyncSender<()>>) {
        match cmd {
            Command::Flush(tx) => waiters.push(tx),
            Command::Append { group, stream, timestamp, message } => {
                let ingestion_time = now_ms();
                let event = StoredEvent { timestamp, ingestion_time, message };
                let key = (group.clone(), stream.clone());
                let root = &self.root;
                let opened = self.files.get_or_open(key, std::time::Instant::now(), || {
                    let dir = root.join(encode(&group));
                    std::fs::create_dir_all(&dir)
                        .and_then(|_| {
                            std::fs::OpenOptions::new().create(true).append(true).open(dir.join(format!("{}.jsonl", encode(&stream))))
                        })
                        .map(|f| BufWriter::with_capacity(16 * 1024, f))
                });
                let w = match opened {
                    Ok(w) => w,
                    Err(e) => {
                        tracing::warn!("cannot open log stream {stream}: {e}");
                        return;
                    }
                };
                let mut line = serde_json::to_vec(&event).expect("log event serializes");
                line.push(b'\n');
                if w.write_all(&line).is_err() {
                    return;
                }
                let mut index = self.index.write().unwrap_or_else(|p| p.into_inner());
                let g = index
                    .entry(group.to_string())
                    .or_insert_with(|| GroupIndex { creation_time: ingestion_time, streams: BTreeMap::new() });
                let s = g.streams.entry(stream.to_string()).or_insert_with(|| StreamInfo {
                    name: stream.to_string(),
                    creation_time: ingestion_time,
                    first_event: event.timestamp,
                    last_event: event.timestamp,
                    ..Default::default()
                });
                s.first_event = s.first_event.min(event.timestamp);
                s.last_event = s.last_event.max(event.timestamp);
                s.last_ingestion = ingestion_time;
                s.stored_bytes += event.message.len() as u64;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_streams_close_idle_files_and_keep_the_newest_within_the_cap() {
        let t0 = std::time::Instant::now();
        let at = |s: u64| t0 + std::time::Duration::from_secs(s);
        let key = |i: u32| -> (Arc<str>, Arc<str>) { ("g".into(), format!("s{i}").into()) };
        let mut open = OpenStreams::new(3, std::time::Duration::from_secs(10));
        let mut opened = 0;
        for i in 0..5 {
            open.get_or_open(key(i), at(u64::from(i)), || -> Result<u32, ()> {
                opened += 1;
                Ok(i)
            })
            .unwrap();
        }
        // Written again: not reopened, and now the newest.
        assert_eq!(*open.get_or_open(key(0), at(5), || -> Result<u32, ()> { panic!("reopened") }).unwrap(), 0);
        assert_eq!((open.len(), opened), (5, 5));
        open.sweep(at(5));
        let mut kept: Vec<u32> = open.values_mut().map(|f| *f).collect();
        kept.sort_unstable();
        assert_eq!(kept, vec![0, 3, 4], "the three most recently written");
        // Ten seconds without a write closes a file.
        open.sweep(at(13));
        let mut kept: Vec<u32> = open.values_mut().map(|f| *f).collect();
        kept.sort_unstable();
        assert_eq!(kept, vec![0, 4]);
        open.sweep(at(16));
        assert_eq!(open.len(), 0);
        // A failed open leaves nothing behind.
        assert_eq!(open.get_or_open(key(9), at(16), || Err::<u32, _>("denied")).map(|f| *f), Err("denied"));
        assert_eq!(open.len(), 0);
    }

    #[test]
    fn a_stream_written_after_its_file_was_closed_appends() {
        let dir = tempfile::tempdir().unwrap();
        let store = LogStore::open(dir.path()).unwrap();
        let sink = store.sink("/aws/lambda/f", "s");
        sink.emit(1, "one".into());
        store.flush();
        // Many other streams push the first one's file out of the open set.
        for i in 0..(MAX_OPEN_FILES + 5) {
            store.sink("/aws/lambda/f", &format!("other-{i}")).emit(2, "x".into());
        }
        store.flush();
        sink.emit(3, "two".into());
        store.flush();
        let ev = store.stream_page("/aws/lambda/f", "s", None, None, Cursor::Head, 100).unwrap().events;
        assert_eq!(ev.iter().map(|e| e.message.as_str()).collect::<Vec<_>>(), ["one", "two"]);
    }

    #[test]
    fn write_read_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = LogStore::open(dir.path()).unwrap();
            let sink = store.sink("/aws/lambda/f", "2026/11/27/[$LATEST]abc");
            sink.emit(1, "START RequestId: 1".into());
            sink.emit(2, "hello\nworld".into());
            store.flush();
            let ev = store.stream_page("/aws/lambda/f", "2026/11/27/[$LATEST]abc", None, None, Cursor::Head, 100).unwrap().events;
            assert_eq!(ev.len(), 2);
            assert_eq!(ev[1].message, "hello\nworld");
        }
        let store = LogStore::open(dir.path()).unwrap();
        assert_eq!(store.groups("/aws/lambda/").len(), 1);
        let streams = store.streams("/aws/lambda/f").unwrap();
        assert_eq!(streams[0].first_event, 1);
        assert_eq!(streams[0].last_event, 2);
        let hits = store.filter_page("/aws/lambda/f", None, None, None, None, &FilterPattern::parse("hello"), None, 100).unwrap();
        assert_eq!((hits.events.len(), hits.next), (1, None));
        assert!(store.streams("/aws/lambda/none").is_none());
    }

    fn ev(timestamp: i64, size: usize) -> StoredEvent {
        StoredEvent { timestamp, ingestion_time: timestamp, message: "x".repeat(size) }
    }

    #[test]
    fn stream_pages_hold_at_most_a_page() {
        let events = || (0..10).map(|t| ev(t, 74)); // 100 bytes each, as counted
        let window = |p: StreamPage| (p.events.iter().map(|e| e.timestamp).collect::<Vec<_>>(), p.lo, p.hi);
        /// (cursor, limit, byte cap, (timestamps, lo, hi)).
        type Case = (Cursor, usize, usize, (Vec<i64>, usize, usize));
        let cases: Vec<Case> = vec![
            (Cursor::Head, 3, 10_000, (vec![0, 1, 2], 0, 3)),
            (Cursor::Forward(8), 3, 10_000, (vec![8, 9], 8, 10)),
            (Cursor::Forward(10), 3, 10_000, (vec![], 10, 10)),
            (Cursor::Forward(50), 3, 10_000, (vec![], 10, 10)),
            (Cursor::Tail, 3, 10_000, (vec![7, 8, 9], 7, 10)),
            (Cursor::Backward(7), 3, 10_000, (vec![4, 5, 6], 4, 7)),
            (Cursor::Backward(2), 3, 10_000, (vec![0, 1], 0, 2)),
            (Cursor::Backward(0), 3, 10_000, (vec![], 0, 0)),
            // The byte cap: 250 bytes hold two of these events.
            (Cursor::Head, 10, 250, (vec![0, 1], 0, 2)),
            (Cursor::Tail, 10, 250, (vec![8, 9], 8, 10)),
            // ... but never less than one event, however large.
            (Cursor::Head, 10, 50, (vec![0], 0, 1)),
            (Cursor::Tail, 10, 50, (vec![9], 9, 10)),
        ];
        for (from, limit, bytes, want) in cases {
            assert_eq!(window(page_of(events(), from, limit, bytes)), want, "{from:?} limit {limit} bytes {bytes}");
        }
    }

    #[test]
    fn filter_pages_take_the_earliest_events_that_fit() {
        let at = |t: i64, s: &str, line: u64| Position { timestamp: t, stream: s.into(), line };
        // Two streams offered one after the other, interleaved in time.
        let offers = [(1, "a", 0), (4, "a", 1), (6, "a", 2), (2, "b", 0), (3, "b", 1), (5, "b", 2)];
        let cases: Vec<(usize, usize, Vec<i64>, Option<Position>)> = vec![
            (10, 10_000, vec![1, 2, 3, 4, 5, 6], None),
            (3, 10_000, vec![1, 2, 3], Some(at(4, "a", 1))),
            (10, 250, vec![1, 2], Some(at(3, "b", 1))),
            (1, 10_000, vec![1], Some(at(2, "b", 0))),
        ];
        for (limit, bytes, want, next) in cases {
            let mut best = BestPage::new(limit, bytes);
            for (t, s, line) in offers {
                best.offer(at(t, s, line), ev(t, 74));
            }
            let page = best.finish();
            assert_eq!(page.events.iter().map(|(p, _)| p.timestamp).collect::<Vec<_>>(), want, "limit {limit} bytes {bytes}");
            assert_eq!(page.next, next, "limit {limit} bytes {bytes}");
        }
    }

    #[test]
    fn filter_pages_resume_where_the_last_one_ended() {
        let dir = tempfile::tempdir().unwrap();
        let store = LogStore::open(dir.path()).unwrap();
        for (stream, times) in [("a", [1, 4, 6, 7]), ("b", [2, 3, 5, 8])] {
            let sink = store.sink("g", stream);
            for t in times {
                sink.emit(t, format!("line {t}"));
            }
        }
        let mut seen = Vec::new();
        let mut after = None;
        for _ in 0..10 {
            let page = store.filter_page("g", None, None, None, None, &FilterPattern::parse(""), after.as_ref(), 3).unwrap();
            seen.extend(page.events.iter().map(|(p, _)| p.timestamp));
            let Some(next) = page.next else { break };
            // The next page starts at `next`: resume after the last event returned.
            after = page.events.last().map(|(p, _)| p.clone());
            assert!(after.as_ref().is_some_and(|a| *a < next));
        }
        assert_eq!(seen, vec![1, 2, 3, 4, 5, 6, 7, 8]);
    }
}
