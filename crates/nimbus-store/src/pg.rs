//! PostgreSQL for the stores that several nodes share: one connection pool per account,
//! whose connections see that account's schema (`nimbus_<account>`) first on their
//! `search_path`, and each store's ordered migrations, run under an advisory lock so nodes
//! that start at once migrate one after another and never twice.

use std::str::FromStr;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

use crate::StoreError;

/// One store's tables in PostgreSQL: its name (the key of its row in `migrations`) and its
/// migrations, in order; a migration once released is never changed, only followed.
pub struct PgSchema {
    pub name: &'static str,
    pub migrations: &'static [&'static str],
}

/// The advisory lock every node takes (in the migrating transaction) before it creates a
/// schema or migrates a store: an arbitrary constant of Nimbus's own.
const MIGRATION_LOCK: i64 = 0x6e69_6d62_7573_0017;

/// How long a call waits for a connection, or to make one, before it fails: a database that
/// is gone fails requests (AWS's `ServiceException`) instead of hanging them.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Connections a node keeps per account.
const POOL_SIZE: usize = 16;

/// Connections a node keeps per account for relaxed commits.
const RELAXED_POOL_SIZE: usize = 4;

/// The pools' sizes when every store of an account shares them ([`share_pools`]).
const SHARED_POOL_SIZE: usize = 16;
const SHARED_RELAXED_POOL_SIZE: usize = 4;

/// The process's pools per (URL, account), once [`share_pools`] was called.
static SHARED: std::sync::OnceLock<std::sync::Mutex<std::collections::HashMap<(String, String), PgDatabase>>> = std::sync::OnceLock::new();

/// From now on every store of this process opening an account's schema gets one pool for
/// it (and one relaxed pool), its connections named `application_name`, instead of pools of
/// their own: a node's connections per account stay a few dozen however many stores share
/// it. Each store still ignores the announcements of this process (they are its own: each
/// table is written by one store). The server calls it; tests that open several "nodes" in
/// one process do not.
pub fn share_pools(application_name: &str) {
    let _ = SHARED_NAME.set(application_name.to_string());
    SHARED.get_or_init(Default::default);
    HUBS.get_or_init(Default::default);
}

/// The process's change feeds per (URL, channel, node name), once [`share_pools`] was
/// called: every store of an account listens through one connection per channel.
static HUBS: std::sync::OnceLock<std::sync::Mutex<Hubs>> = std::sync::OnceLock::new();

/// The hubs by (URL, channel, node name).
type Hubs = std::collections::HashMap<(String, String, String), std::sync::Arc<Hub>>;

/// A subscriber's callback.
type OnAnnouncement = std::sync::Arc<dyn Fn(Announcement) + Send + Sync>;

/// A hub's subscriber: whether its owner lives, and its callback.
type Subscriber = (Box<dyn Fn() -> bool + Send + Sync>, OnAnnouncement);

/// One LISTEN connection shared by the stores of a process: what it hears goes to each
/// subscriber still alive (a subscriber whose owner is gone is dropped at the next one).
struct Hub {
    /// The feed connection's `application_name` (see [`feed_listens`]).
    feed: String,
    subscribers: std::sync::Mutex<Vec<Subscriber>>,
}

impl Hub {
    fn tell(&self, a: Announcement) {
        let live: Vec<OnAnnouncement> = {
            let mut subs = self.subscribers.lock().unwrap_or_else(|p| p.into_inner());
            subs.retain(|(alive, _)| alive());
            subs.iter().map(|(_, on)| on.clone()).collect()
        };
        for on in live {
            on(a.clone());
        }
    }
}

/// With shared pools, subscribes `on` (while `owner` lives) to the process's feed of
/// `channel`, starting it if it is the first, and returns the feed connection's name; None
/// without shared pools (the caller runs a feed of its own).
fn subscribe<T: Send + Sync + 'static>(
    owner: &std::sync::Weak<T>,
    url: &str,
    channel: &str,
    me: &str,
    on: OnAnnouncement,
) -> Option<String> {
    let hubs = HUBS.get()?;
    let key = (url.to_string(), channel.to_string(), me.to_string());
    let (hub, new) = {
        let mut hubs = hubs.lock().unwrap_or_else(|p| p.into_inner());
        match hubs.get(&key) {
            Some(hub) => (hub.clone(), false),
            None => {
                let hub = std::sync::Arc::new(Hub { feed: feed_name(me), subscribers: Default::default() });
                hubs.insert(key, hub.clone());
                (hub, true)
            }
        }
    };
    let alive = owner.clone();
    hub.subscribers.lock().unwrap_or_else(|p| p.into_inner()).push((Box::new(move || alive.strong_count() > 0), on));
    if new {
        // The hub lives as long as the process (it is in HUBS), and so does its feed.
        let tells = std::sync::Arc::downgrade(&hub);
        tokio::spawn(listen_as(tells.clone(), url.to_string(), channel.to_string(), me.to_string(), hub.feed.clone(), move |a| {
            if let Some(hub) = tells.upgrade() {
                hub.tell(a);
            }
        }));
    }
    Some(hub.feed.clone())
}

static SHARED_NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// The trigger function every shared store's tables announce their changes with, at commit,
/// on the schema's channel: `<writer's application_name>\t<table>\t<key>`, the key being
/// the row's column named by the trigger's argument. Made (again) by every migration.
pub const NOTIFY_CHANGE: &str = "
CREATE OR REPLACE FUNCTION notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    key TEXT;
BEGIN
    IF TG_OP = 'DELETE' THEN
        key := to_jsonb(OLD) ->> TG_ARGV[0];
    ELSE
        key := to_jsonb(NEW) ->> TG_ARGV[0];
    END IF;
    PERFORM pg_notify(TG_TABLE_SCHEMA, current_setting('application_name') || E'\\t' || TG_TABLE_NAME || E'\\t' || coalesce(key, ''));
    RETURN NULL;
END
$$;";

/// What another node announced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Announcement {
    /// A row of `table` whose key column holds `key` was written or deleted.
    Change { table: String, key: String },
    /// Announcements may have been missed (the feed was cut and is back).
    Resync,
}

/// An announcement's payload, unless `me` wrote it.
fn announcement(payload: &str, me: &str) -> Option<Announcement> {
    let mut parts = payload.splitn(3, '\t');
    let (writer, table, key) = (parts.next()?, parts.next()?, parts.next()?);
    (writer != me).then(|| Announcement::Change { table: table.to_string(), key: key.to_string() })
}

/// How long the feed waits before it connects again after losing its connection.
const FEED_RETRY: Duration = Duration::from_millis(500);

/// Numbers the feeds' connections of this process.
static FEEDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A name for a new feed connection of the process whose connections are named `me` (each
/// feed has its own, so [`watch_tables`] can tell when its own listens).
fn feed_name(me: &str) -> String {
    format!("{me}/feed-{}", FEEDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
}

/// The change feed of a schema: a connection of its own that LISTENs on the schema's channel
/// and hands every other node's announcement to `on`; after a cut, [`Announcement::Resync`]
/// first, since what was announced meanwhile is lost. Runs while `owner` lives.
pub async fn listen<T: Send + Sync + 'static>(
    owner: std::sync::Weak<T>,
    url: String,
    schema: String,
    me: String,
    on: impl Fn(Announcement) + Send + Sync + 'static,
) {
    let on: OnAnnouncement = std::sync::Arc::new(on);
    if subscribe(&owner, &url, &schema, &me, on.clone()).is_some() {
        return;
    }
    let feed = feed_name(&me);
    listen_as(owner, url, schema, me, feed, move |a| on(a)).await
}

/// [`listen`] on a connection named `feed`.
async fn listen_as<T: Send + Sync + 'static>(
    owner: std::sync::Weak<T>,
    url: String,
    schema: String,
    me: String,
    feed: String,
    on: impl Fn(Announcement) + Send + Sync + 'static,
) {
    let mut cut = false;
    loop {
        if owner.strong_count() == 0 {
            return;
        }
        let Ok(mut config) = tokio_postgres::Config::from_str(&url) else { return };
        config.application_name(&feed).connect_timeout(CONNECT_TIMEOUT);
        match config.connect(NoTls).await {
            Ok((client, mut connection)) => {
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
                let channel = schema.clone();
                let pump = tokio::spawn(async move {
                    loop {
                        match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                            Some(Ok(tokio_postgres::AsyncMessage::Notification(n))) => {
                                if tx.send(n.payload().to_string()).is_err() {
                                    return;
                                }
                            }
                            Some(Ok(_)) => {}
                            Some(Err(e)) => {
                                tracing::warn!("the change feed of {channel}: {e}");
                                return;
                            }
                            None => return,
                        }
                    }
                });
                if let Err(e) = client.batch_execute(&format!("LISTEN {schema}")).await {
                    tracing::warn!("the change feed: LISTEN: {}", backend(e));
                    pump.abort();
                } else {
                    if std::mem::take(&mut cut) {
                        on(Announcement::Resync);
                    }
                    while let Some(payload) = rx.recv().await {
                        if owner.strong_count() == 0 {
                            pump.abort();
                            return;
                        }
                        if let Some(a) = announcement(&payload, &me) {
                            on(a);
                        }
                    }
                }
            }
            Err(e) => tracing::warn!("the change feed: connecting: {}", backend(e)),
        }
        cut = true;
        tokio::time::sleep(FEED_RETRY).await;
    }
}

/// How long [`watch_tables`] waits for its feed to listen before it calls back anyway.
const FEED_WAIT: Duration = Duration::from_secs(10);

/// A store's change feed as its service wants it: `on` after every other node's change to
/// one of `tables` and after a cut feed is back, and once when the feed first listens (what
/// was committed between the caller's load and the LISTEN was announced to nobody here).
/// Runs while `owner` lives.
pub fn watch_tables<T: Send + Sync + 'static>(
    owner: std::sync::Weak<T>,
    url: String,
    db: PgDatabase,
    tables: &'static [&'static str],
    on: impl Fn() + Send + Sync + 'static,
) {
    let on = std::sync::Arc::new(on);
    let heard = on.clone();
    let told: OnAnnouncement = std::sync::Arc::new(move |a| match a {
        Announcement::Resync => heard(),
        Announcement::Change { table, .. } if tables.contains(&table.as_str()) => heard(),
        Announcement::Change { .. } => {}
    });
    let mine = match subscribe(&owner, &url, db.schema(), db.node(), told.clone()) {
        Some(shared) => shared,
        None => {
            let feed = feed_name(db.node());
            tokio::spawn(listen_as(owner.clone(), url, db.schema().to_string(), db.node().to_string(), feed.clone(), move |a| told(a)));
            feed
        }
    };
    tokio::spawn(async move {
        let started = tokio::time::Instant::now();
        while started.elapsed() < FEED_WAIT && owner.strong_count() > 0 {
            match feed_listens(&db, &mine).await {
                Ok(true) => break,
                Ok(false) => {}
                Err(e) => tracing::debug!("waiting for the change feed of {}: {e}", db.schema()),
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if owner.strong_count() > 0 {
            on();
        }
    });
}

/// Keeps a node's reloads of a mirrored store from undoing its own changes: a reload that
/// read the database before a local change committed must not be applied after it (the
/// node ignores its own announcements, so nothing would correct it). Local changes hold a
/// [`MirrorChange`] from before their commit until their mirror is updated; a reload reads,
/// then applies only if no local change was made or is under way meanwhile, else reads again.
#[derive(Default)]
pub struct Mirror {
    changes: std::sync::atomic::AtomicU64,
    busy: std::sync::atomic::AtomicU64,
}

/// A local change to a mirrored store under way (see [`Mirror`]).
pub struct MirrorChange<'a>(&'a Mirror);

impl Drop for MirrorChange<'_> {
    fn drop(&mut self) {
        self.0.changes.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.0.busy.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Mirror {
    /// Marks a local change under way until the guard goes.
    pub fn change(&self) -> MirrorChange<'_> {
        self.busy.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        MirrorChange(self)
    }

    /// Reads with `read`, then hands what it read to `apply` with a check to make under the
    /// mirror's lock (true: no local change happened or is under way since the read began);
    /// `apply` returns whether it applied, and the read is made again until it did.
    pub async fn reload<T, E, F: std::future::Future<Output = Result<T, E>>>(
        &self,
        mut read: impl FnMut() -> F,
        mut apply: impl FnMut(T, &dyn Fn() -> bool) -> bool,
    ) -> Result<(), E> {
        use std::sync::atomic::Ordering::SeqCst;
        loop {
            let before = self.changes.load(SeqCst);
            if self.busy.load(SeqCst) > 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            }
            let read = read().await?;
            if apply(read, &|| self.busy.load(SeqCst) == 0 && self.changes.load(SeqCst) == before) {
                return Ok(());
            }
        }
    }
}

/// How long a failed reload waits before it tries again.
const RELOAD_RETRY: Duration = Duration::from_secs(1);

/// A change feed's callback for a service that mirrors a shared store in memory: each call
/// asks for `reload(owner)`, run one at a time on a task of its own; calls while one runs
/// make one more after it (one waiting is as good as several), and a failed reload is tried
/// again every second (its error logged with `what`). Ends with `owner`.
pub fn reloader<T, F, Fut, E>(owner: std::sync::Weak<T>, what: String, reload: F) -> impl Fn() + Send + Sync + 'static
where
    T: Send + Sync + 'static,
    F: Fn(std::sync::Arc<T>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<(), E>> + Send,
    E: std::fmt::Display,
{
    let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
    tokio::spawn(async move {
        while rx.recv().await.is_some() {
            loop {
                let Some(owner) = owner.upgrade() else { return };
                match reload(owner).await {
                    Ok(()) => break,
                    Err(e) => tracing::warn!("{what}: reading the other nodes' changes: {e}"),
                }
                tokio::time::sleep(RELOAD_RETRY).await;
            }
        }
    });
    move || {
        let _ = tx.try_send(());
    }
}

/// Whether the feed connection named `feed` is LISTENing on the schema's channel.
async fn feed_listens(db: &PgDatabase, feed: &str) -> Result<bool, StoreError> {
    let client = db.client().await?;
    let row = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database() AND query = $2)",
            &[&feed, &format!("LISTEN {}", db.schema())],
        )
        .await
        .map_err(backend)?;
    Ok(row.get(0))
}

/// An account's schema in a PostgreSQL database, and the pool that reaches it.
#[derive(Clone)]
pub struct PgDatabase {
    pool: Pool,
    /// Connections whose commits do not wait for the WAL's flush (`synchronous_commit=off`):
    /// for writes whose loss in a crash of the database only repeats work (claims, leases,
    /// heartbeats, an async event's completion: it runs again, at least once). A later
    /// durable commit flushes them too, as the WAL is one sequence.
    relaxed: Pool,
    schema: String,
    /// This node's connections' `application_name`: the writer named in announcements.
    node: String,
    /// The URL without its password, for messages.
    shown: String,
}

impl std::fmt::Debug for PgDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgDatabase").field("url", &self.shown).field("schema", &self.schema).finish()
    }
}

/// A PostgreSQL error as the store reports it: the server's own message when it sent one.
pub fn backend(e: tokio_postgres::Error) -> StoreError {
    match e.as_db_error() {
        Some(db) => StoreError::Backend(format!("PostgreSQL: {} ({})", db.message(), db.code().code())),
        None => match std::error::Error::source(&e) {
            Some(cause) => StoreError::Backend(format!("PostgreSQL: {e}: {cause}")),
            None => StoreError::Backend(format!("PostgreSQL: {e}")),
        },
    }
}

fn pool_error(e: deadpool_postgres::PoolError) -> StoreError {
    match e {
        deadpool_postgres::PoolError::Backend(e) => backend(e),
        e => StoreError::Backend(format!("PostgreSQL: {e}")),
    }
}

/// A transaction-scoped advisory lock's key for what `parts` name (FNV-1a over them, each
/// length-prefixed): advisory locks are the whole database's, so callers include their
/// account's schema. A collision only makes two holders wait on each other.
pub fn advisory_key(parts: &[&[u8]]) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in (part.len() as u64).to_le_bytes().iter().chain(part.iter()) {
            hash ^= u64::from(*b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash as i64
}

/// How a transaction holds an advisory lock until it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    /// Beside other shared holders (writers of what the lock guards).
    Shared,
    /// Alone (a change of the thing itself).
    Exclusive,
}

/// Takes the transaction-scoped advisory lock `key` (see [`advisory_key`]) in a statement of
/// its own, so a read that follows sees what the lock's last holder committed.
pub async fn hold(tx: &deadpool_postgres::Transaction<'_>, key: i64, how: Hold) -> Result<(), StoreError> {
    let sql = match how {
        Hold::Shared => "SELECT pg_advisory_xact_lock_shared($1)",
        Hold::Exclusive => "SELECT pg_advisory_xact_lock($1)",
    };
    let statement = tx.prepare_cached(sql).await.map_err(backend)?;
    tx.execute(&statement, &[&key]).await.map_err(backend)?;
    Ok(())
}

/// The schema of an account's tables.
pub fn schema_of(account: &str) -> Result<String, StoreError> {
    if account.is_empty() || !account.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(StoreError::Backend(format!("not an account id: {account:?}")));
    }
    Ok(format!("nimbus_{account}"))
}

/// `url` as it may be shown: user, hosts, ports and database, never the password.
pub fn redacted(url: &str) -> String {
    let Ok(config) = tokio_postgres::Config::from_str(url) else { return "postgres://(unparsable URL)".to_string() };
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .zip(config.get_ports().iter().chain(std::iter::repeat(&5432)))
        .map(|(h, p)| match h {
            tokio_postgres::config::Host::Tcp(h) => format!("{h}:{p}"),
            tokio_postgres::config::Host::Unix(path) => format!("{}:{p}", path.display()),
        })
        .collect();
    format!("postgres://{}@{}/{}", config.get_user().unwrap_or(""), hosts.join(","), config.get_dbname().unwrap_or(""))
}

impl PgDatabase {
    /// A pool on `url` whose connections use `account`'s schema. Connects once, so a wrong
    /// URL, an unreachable server or a refused login is an error here, at start.
    /// `application_name` names this node's connections (to the server's operators, and
    /// to the change feed's triggers).
    pub async fn open(url: &str, account: &str, application_name: &str) -> Result<PgDatabase, StoreError> {
        let Some(shared) = SHARED.get() else {
            return PgDatabase::connect(url, account, application_name, POOL_SIZE, RELAXED_POOL_SIZE).await;
        };
        let key = (url.to_string(), account.to_string());
        if let Some(db) = shared.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return Ok(db.clone());
        }
        let name = SHARED_NAME.get().map_or(application_name, String::as_str);
        let db = PgDatabase::connect(url, account, name, SHARED_POOL_SIZE, SHARED_RELAXED_POOL_SIZE).await?;
        // Two stores opening at once: the first one kept is everyone's.
        Ok(shared.lock().unwrap_or_else(|p| p.into_inner()).entry(key).or_insert(db).clone())
    }

    async fn connect(url: &str, account: &str, application_name: &str, size: usize, relaxed_size: usize) -> Result<PgDatabase, StoreError> {
        let shown = redacted(url);
        let mut config = tokio_postgres::Config::from_str(url)
            .map_err(|e| StoreError::Backend(format!("--store {shown}: not a PostgreSQL URL: {e}")))?;
        if config.get_ssl_mode() == tokio_postgres::config::SslMode::Require {
            return Err(StoreError::Backend(format!(
                "--store {shown}: sslmode=require is not supported (connections are plain TCP or a unix socket)"
            )));
        }
        let schema = schema_of(account)?;
        // (client_min_messages: the migrations' "already exists, skipping" notices are not news)
        config.options(format!("-c search_path={schema} -c client_min_messages=warning"));
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        config.application_name(application_name);
        let pool = |config: tokio_postgres::Config, size: usize| {
            let manager = Manager::from_config(config, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
            Pool::builder(manager)
                .max_size(size)
                .runtime(Runtime::Tokio1)
                .wait_timeout(Some(CONNECT_TIMEOUT))
                .create_timeout(Some(CONNECT_TIMEOUT))
                .recycle_timeout(Some(CONNECT_TIMEOUT))
                .build()
                .map_err(|e| StoreError::Backend(format!("--store {shown}: {e}")))
        };
        let mut relaxed_config = config.clone();
        relaxed_config.options(format!("-c search_path={schema} -c client_min_messages=warning -c synchronous_commit=off"));
        let relaxed = pool(relaxed_config, relaxed_size)?;
        let pool = pool(config, size)?;
        let db = PgDatabase { pool, relaxed, schema, node: application_name.to_string(), shown };
        drop(db.client().await.map_err(|e| match e {
            StoreError::Backend(why) => StoreError::Backend(format!("--store {}: {why}", db.shown)),
            e => e,
        })?);
        Ok(db)
    }

    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// The name this node's connections carry (`application_name`).
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The URL without its password.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// A pooled connection.
    pub async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(pool_error)
    }

    /// Checks that `master` is the key the records in this schema are sealed under (every
    /// node must seal with one): the first opener records its check value in `table` (a
    /// store's `…sealing` table: `id` 1, `key_check`), every later one compares.
    /// [`crate::sealing::SealError`] (in [`StoreError::Sealing`]) when it is another key.
    pub async fn check_master_key(&self, table: &str, master: &crate::sealing::MasterKey) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(&format!("INSERT INTO {table} (id, key_check) VALUES (1, $1) ON CONFLICT (id) DO NOTHING"), &[&master.key_check()])
            .await
            .map_err(backend)?;
        let check: Vec<u8> = client.query_one(&format!("SELECT key_check FROM {table} WHERE id = 1"), &[]).await.map_err(backend)?.get(0);
        Ok(master.verify(&check)?)
    }

    /// A pooled connection whose commits return before they are flushed (see `relaxed`).
    pub async fn relaxed_client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.relaxed.get().await.map_err(pool_error)
    }

    /// Creates the account's schema if needed and runs `schema`'s migrations that have not
    /// run, each recorded with it, all in one transaction under [`MIGRATION_LOCK`].
    pub async fn migrate(&self, schema: &PgSchema) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await.map_err(backend)?;
        tx.batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS {0};
             CREATE TABLE IF NOT EXISTS {0}.migrations (store TEXT PRIMARY KEY, version INTEGER NOT NULL);
             {NOTIFY_CHANGE}",
            self.schema
        ))
        .await
        .map_err(backend)?;
        let done: i32 = tx
            .query_opt("SELECT version FROM migrations WHERE store = $1", &[&schema.name])
            .await
            .map_err(backend)?
            .map(|row| row.get(0))
            .unwrap_or(0);
        let done = usize::try_from(done).unwrap_or(0);
        if done > schema.migrations.len() {
            return Err(StoreError::Backend(format!(
                "the {} tables in {} are at migration {done}, newer than this release knows ({}): start the newer release",
                schema.name,
                self.shown,
                schema.migrations.len()
            )));
        }
        for (i, sql) in schema.migrations.iter().enumerate().skip(done) {
            tx.batch_execute(sql).await.map_err(|e| {
                let StoreError::Backend(why) = backend(e) else { unreachable!("backend() makes Backend errors") };
                StoreError::Backend(format!("migrating the {} tables to {}: {why}", schema.name, i + 1))
            })?;
        }
        let version = i32::try_from(schema.migrations.len()).expect("fewer than 2^31 migrations");
        tx.execute(
            "INSERT INTO migrations (store, version) VALUES ($1, $2) ON CONFLICT (store) DO UPDATE SET version = $2",
            &[&schema.name, &version],
        )
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)
    }
}

/// A throwaway database per test, on the server `NIMBUS_TEST_POSTGRES` names (a URL without
/// a database, e.g. `postgres://postgres@127.0.0.1:54329`; `scripts/test` starts one and
/// sets it). Without it a test is skipped, except under CI (`CI` set), where it fails.
/// Other crates' tests reach it through the `testing` feature.
#[cfg(any(test, feature = "testing"))]
pub mod testing {
    /// The URL of a new, empty database, or `None` (the test is skipped) outside CI.
    pub async fn fresh_database() -> Option<String> {
        let Ok(base) = std::env::var("NIMBUS_TEST_POSTGRES") else {
            assert!(
                std::env::var_os("CI").is_none(),
                "NIMBUS_TEST_POSTGRES is not set: PostgreSQL tests cannot run (scripts/test sets it)"
            );
            eprintln!("skipped: NIMBUS_TEST_POSTGRES is not set (scripts/test sets it)");
            return None;
        };
        let base = base.trim_end_matches('/').to_string();
        let name = format!("nimbus_test_{}", hex::encode(&crate::sealing::random_key()[..8]));
        let (client, connection) =
            tokio_postgres::connect(&format!("{base}/postgres"), tokio_postgres::NoTls).await.expect("the test PostgreSQL server answers");
        let task = tokio::spawn(connection);
        client.batch_execute(&format!("CREATE DATABASE {name}")).await.expect("CREATE DATABASE");
        drop(client);
        let _ = task.await;
        Some(format!("{base}/{name}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reload whose read began before a local change (and read the store without it) is
    /// not applied: it reads again; one with no local change meanwhile is applied at once.
    #[tokio::test]
    async fn a_reload_never_undoes_a_local_change() {
        let mirror = Mirror::default();
        let state = std::sync::Mutex::new(0);
        let store = std::sync::atomic::AtomicI32::new(1);
        let reads = std::sync::atomic::AtomicUsize::new(0);
        let read = || async {
            let seen = store.load(std::sync::atomic::Ordering::SeqCst);
            if reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                // Meanwhile, a local change commits 2 and sets it here.
                let _change = mirror.change();
                store.store(2, std::sync::atomic::Ordering::SeqCst);
                *state.lock().unwrap() = 2;
            }
            Ok::<_, ()>(seen)
        };
        let apply = |v, valid: &dyn Fn() -> bool| {
            let mut s = state.lock().unwrap();
            valid() && {
                *s = v;
                true
            }
        };
        mirror.reload(read, apply).await.unwrap();
        assert_eq!((*state.lock().unwrap(), reads.load(std::sync::atomic::Ordering::SeqCst)), (2, 2));
        // Nothing local meanwhile: one read, applied.
        store.store(3, std::sync::atomic::Ordering::SeqCst);
        mirror.reload(|| async { Ok::<_, ()>(store.load(std::sync::atomic::Ordering::SeqCst)) }, apply).await.unwrap();
        assert_eq!(*state.lock().unwrap(), 3);
    }

    #[test]
    fn urls_are_shown_without_their_password() {
        let cases = [
            ("postgres://nimbus:s3cret@db.example:6543/state", "postgres://nimbus@db.example:6543/state"),
            ("postgresql://u:p@127.0.0.1/x?connect_timeout=3", "postgres://u@127.0.0.1:5432/x"),
            ("host=/run/postgresql user=n password=hunter2 dbname=d", "postgres://n@/run/postgresql:5432/d"),
            ("not a url at all ://", "postgres://(unparsable URL)"),
        ];
        for (url, shown) in cases {
            assert_eq!(redacted(url), shown, "{url}");
            assert!(!redacted(url).contains("s3cret") && !redacted(url).contains("hunter2"));
        }
    }

    #[test]
    fn announcements_parse() {
        let change = |t: &str, k: &str| Some(Announcement::Change { table: t.into(), key: k.into() });
        let cases = [
            ("nimbus-b\tfunctions\tf1", change("functions", "f1")),
            ("nimbus-b\taliases\tf\twith\ttabs", change("aliases", "f\twith\ttabs")),
            ("nimbus-b\tfunctions\t", change("functions", "")),
            ("nimbus-a\tfunctions\tf1", None),
            ("garbage", None),
            ("nimbus-b\tno-key", None),
        ];
        for (payload, want) in cases {
            assert_eq!(announcement(payload, "nimbus-a"), want, "{payload}");
        }
    }

    #[test]
    fn schemas_are_named_by_account() {
        assert_eq!(schema_of("000000000000").unwrap(), "nimbus_000000000000");
        for bad in ["", "0000; DROP", "a-b", "x\"y"] {
            assert!(schema_of(bad).is_err(), "{bad}");
        }
    }

    /// Nodes starting at once migrate once: the lock serializes them and the second finds
    /// the work done; a database migrated by a newer release is refused.
    #[tokio::test]
    async fn concurrent_migrations_run_once() {
        let Some(url) = testing::fresh_database().await else { return };
        const SCHEMA: PgSchema = PgSchema {
            name: "t",
            migrations: &["CREATE TABLE t (id INTEGER PRIMARY KEY)", "INSERT INTO t VALUES (1)", "INSERT INTO t VALUES (2)"],
        };
        let (a, b) =
            (PgDatabase::open(&url, "111111111111", "a").await.unwrap(), PgDatabase::open(&url, "111111111111", "b").await.unwrap());
        let (x, y) = tokio::join!(a.migrate(&SCHEMA), b.migrate(&SCHEMA));
        x.unwrap();
        y.unwrap();
        let rows = a.client().await.unwrap().query("SELECT id FROM t ORDER BY id", &[]).await.unwrap();
        assert_eq!(rows.iter().map(|r| r.get::<_, i32>(0)).collect::<Vec<_>>(), [1, 2]);
        // Another account's schema is apart.
        let other = PgDatabase::open(&url, "222222222222", "c").await.unwrap();
        other.migrate(&PgSchema { name: "t", migrations: &SCHEMA.migrations[..1] }).await.unwrap();
        assert!(other.client().await.unwrap().query("SELECT id FROM t", &[]).await.unwrap().is_empty());
        // An older release meets a newer schema.
        let err = a.migrate(&PgSchema { name: "t", migrations: &SCHEMA.migrations[..2] }).await.unwrap_err();
        assert!(err.to_string().contains("newer than this release knows (2)"), "{err}");
    }

    #[tokio::test]
    async fn unreachable_servers_fail_at_open() {
        let err = PgDatabase::open("postgres://nimbus:pw@127.0.0.1:1/x", "000000000000", "t").await.unwrap_err().to_string();
        assert!(
            err.starts_with("storage backend: --store postgres://nimbus@127.0.0.1:1/x: PostgreSQL: error connecting to server: "),
            "{err}"
        );
        assert!(!err.contains("pw@"), "{err}");
    }
}
