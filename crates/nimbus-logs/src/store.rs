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
        let writer = Writer { root: root.to_path_buf(), index: index.clone(), files: HashMap::new() };
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

    /// Every event of a stream in order, or None if the stream does not exist.
    pub fn read_stream(&self, group: &str, stream: &str) -> Option<Vec<StoredEvent>> {
        {
            let index = self.index.read().unwrap_or_else(|p| p.into_inner());
            index.get(group)?.streams.get(stream)?;
        }
        self.flush();
        Some(read_events(&self.stream_path(group, stream)))
    }

    /// Events of a group's streams (all, or those named) in time order that match `pattern`
    /// within `[start, end]`.
    pub fn filter(
        &self,
        group: &str,
        streams: Option<&[String]>,
        start: Option<i64>,
        end: Option<i64>,
        pattern: &FilterPattern,
    ) -> Option<Vec<(String, StoredEvent)>> {
        let names: Vec<String> = {
            let index = self.index.read().unwrap_or_else(|p| p.into_inner());
            let g = index.get(group)?;
            g.streams
                .values()
                .filter(|s| streams.is_none_or(|wanted| wanted.contains(&s.name)))
                .filter(|s| start.is_none_or(|t| s.last_event >= t) && end.is_none_or(|t| s.first_event <= t))
                .map(|s| s.name.clone())
                .collect()
        };
        self.flush();
        let mut out = Vec::new();
        for name in names {
            for e in read_events(&self.stream_path(group, &name)) {
                if start.is_none_or(|t| e.timestamp >= t) && end.is_none_or(|t| e.timestamp <= t) && pattern.matches(&e.message) {
                    out.push((name.clone(), e));
                }
            }
        }
        out.sort_by_key(|(_, e)| e.timestamp);
        Some(out)
    }

    /// Removes a whole group (used when its function is deleted is *not* AWS behaviour;
    /// kept for tests and cleanup tools).
    pub fn stream_path(&self, group: &str, stream: &str) -> PathBuf {
        self.root.join(encode(group)).join(format!("{}.jsonl", encode(stream)))
    }
}

fn read_events(path: &Path) -> Vec<StoredEvent> {
    let Ok(f) = File::open(path) else { return Vec::new() };
    BufReader::new(f).lines().map_while(Result::ok).filter_map(|l| serde_json::from_str(&l).ok()).collect()
}

fn scan(root: &Path) -> std::io::Result<BTreeMap<String, GroupIndex>> {
    let mut out = BTreeMap::new();
    for g in std::fs::read_dir(root)?.flatten() {
        let Some(group) = g.file_name().to_str().and_then(decode) else { continue };
        let mut gi = GroupIndex { creation_time: i64::MAX, ..Default::default() };
        for s in std::fs::read_dir(g.path())?.flatten() {
            let fname = s.file_name();
            let Some(stream) = fname.to_str().and_then(|n| n.strip_suffix(".jsonl")).and_then(decode) else { continue };
            let events = read_events(&s.path());
            let Some(first) = events.first() else { continue };
            let info = StreamInfo {
                name: stream.clone(),
                creation_time: first.ingestion_time,
                first_event: events.iter().map(|e| e.timestamp).min().unwrap_or(0),
                last_event: events.iter().map(|e| e.timestamp).max().unwrap_or(0),
                last_ingestion: events.last().map(|e| e.ingestion_time).unwrap_or(0),
                stored_bytes: events.iter().map(|e| e.message.len() as u64).sum(),
            };
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
    files: HashMap<(Arc<str>, Arc<str>), BufWriter<File>>,
}

const MAX_OPEN_FILES: usize = 256;
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
            if self.files.len() > MAX_OPEN_FILES {
                self.files.clear();
            }
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
                if !self.files.contains_key(&key) {
                    let dir = self.root.join(encode(&group));
                    let opened = std::fs::create_dir_all(&dir).and_then(|_| {
                        std::fs::OpenOptions::new().create(true).append(true).open(dir.join(format!("{}.jsonl", encode(&stream))))
                    });
                    match opened {
                        Ok(f) => {
                            self.files.insert(key.clone(), BufWriter::with_capacity(16 * 1024, f));
                        }
                        Err(e) => {
                            tracing::warn!("cannot open log stream {stream}: {e}");
                            return;
                        }
                    }
                }
                let w = self.files.get_mut(&key).expect("inserted above");
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
    fn write_read_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = LogStore::open(dir.path()).unwrap();
            let sink = store.sink("/aws/lambda/f", "2026/11/27/[$LATEST]abc");
            sink.emit(1, "START RequestId: 1".into());
            sink.emit(2, "hello\nworld".into());
            store.flush();
            let ev = store.read_stream("/aws/lambda/f", "2026/11/27/[$LATEST]abc").unwrap();
            assert_eq!(ev.len(), 2);
            assert_eq!(ev[1].message, "hello\nworld");
        }
        let store = LogStore::open(dir.path()).unwrap();
        assert_eq!(store.groups("/aws/lambda/").len(), 1);
        let streams = store.streams("/aws/lambda/f").unwrap();
        assert_eq!(streams[0].first_event, 1);
        assert_eq!(streams[0].last_event, 2);
        let hits = store.filter("/aws/lambda/f", None, None, None, &FilterPattern::parse("hello")).unwrap();
        assert_eq!(hits.len(), 1);
        assert!(store.streams("/aws/lambda/none").is_none());
    }
}
