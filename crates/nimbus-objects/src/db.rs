//! One transaction's statements for either engine: the store's logic (sql.rs, list.rs,
//! multipart.rs) is written once against [`Db`], which runs SQLite-dialect statements
//! (`?N` parameters) on `objects.db`'s writer thread ([`Lite`]) or in a PostgreSQL
//! transaction shared by several nodes (`deadpool_postgres::Transaction`, where `?N` becomes
//! `$N`). Values cross as [`Val`]; the few places where the engines differ ask
//! [`Db::postgres`] (a listing's key bound, the notifications' claim) or are no-ops on
//! SQLite, whose one writer thread serialises every change ([`Db::lock_keys`], [`Lock`]).

use std::error::Error as StdError;

use bytes::BytesMut;
use rusqlite::types::{ToSqlOutput, ValueRef};
use tokio_postgres::types::{IsNull, ToSql, Type};

use crate::error::ObjectError;

/// A parameter or a column's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Val {
    Null,
    /// Integers and booleans (0/1).
    Int(i64),
    Text(String),
    Bytes(Vec<u8>),
}

impl From<i64> for Val {
    fn from(v: i64) -> Val {
        Val::Int(v)
    }
}

impl From<u32> for Val {
    fn from(v: u32) -> Val {
        Val::Int(i64::from(v))
    }
}

impl From<bool> for Val {
    fn from(v: bool) -> Val {
        Val::Int(i64::from(v))
    }
}

impl From<&str> for Val {
    fn from(v: &str) -> Val {
        Val::Text(v.to_string())
    }
}

impl From<String> for Val {
    fn from(v: String) -> Val {
        Val::Text(v)
    }
}

impl From<&String> for Val {
    fn from(v: &String) -> Val {
        Val::Text(v.clone())
    }
}

impl From<&[u8]> for Val {
    fn from(v: &[u8]) -> Val {
        Val::Bytes(v.to_vec())
    }
}

impl<T: Into<Val>> From<Option<T>> for Val {
    fn from(v: Option<T>) -> Val {
        v.map_or(Val::Null, Into::into)
    }
}

/// `[Val::from(a), Val::from(b), …]`.
macro_rules! vals {
    ($($v:expr),* $(,)?) => { [$($crate::db::Val::from($v)),*] };
}
pub(crate) use vals;

/// A result row.
#[derive(Debug, Clone)]
pub(crate) struct Row(pub Vec<Val>);

fn column(i: usize, what: &str) -> ObjectError {
    ObjectError::Internal(format!("objects database: column {i} is not {what}"))
}

impl Row {
    fn at(&self, i: usize) -> Result<&Val, ObjectError> {
        self.0.get(i).ok_or_else(|| column(i, "there"))
    }

    pub fn opt_int(&self, i: usize) -> Result<Option<i64>, ObjectError> {
        match self.at(i)? {
            Val::Null => Ok(None),
            Val::Int(v) => Ok(Some(*v)),
            _ => Err(column(i, "an integer")),
        }
    }

    pub fn int(&self, i: usize) -> Result<i64, ObjectError> {
        self.opt_int(i)?.ok_or_else(|| column(i, "an integer"))
    }

    pub fn bool(&self, i: usize) -> Result<bool, ObjectError> {
        Ok(self.int(i)? != 0)
    }

    /// Text, or UTF-8 bytes (PostgreSQL keeps keys as `bytea`, for their byte order).
    pub fn opt_text(&self, i: usize) -> Result<Option<String>, ObjectError> {
        match self.at(i)? {
            Val::Null => Ok(None),
            Val::Text(v) => Ok(Some(v.clone())),
            Val::Bytes(b) => String::from_utf8(b.clone()).map(Some).map_err(|_| column(i, "UTF-8")),
            Val::Int(_) => Err(column(i, "text")),
        }
    }

    pub fn text(&self, i: usize) -> Result<String, ObjectError> {
        self.opt_text(i)?.ok_or_else(|| column(i, "text"))
    }

    pub fn opt_bytes(&self, i: usize) -> Result<Option<Vec<u8>>, ObjectError> {
        match self.at(i)? {
            Val::Null => Ok(None),
            Val::Bytes(b) => Ok(Some(b.clone())),
            Val::Text(t) => Ok(Some(t.clone().into_bytes())),
            Val::Int(_) => Err(column(i, "bytes")),
        }
    }
}

/// How a read of a row holds it until the commit (PostgreSQL; SQLite's writer is alone): an
/// upload's row, shared by its parts' writes, alone for completing or aborting it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lock {
    None,
    /// Against changes of the row itself (`FOR SHARE`).
    Share,
    /// Alone (`FOR UPDATE`).
    Update,
}

/// One transaction of the objects' database.
#[allow(async_fn_in_trait)]
pub(crate) trait Db {
    /// Rows of a query (`?N` parameters).
    async fn rows(&mut self, sql: &str, params: &[Val]) -> Result<Vec<Row>, ObjectError>;
    /// Rows changed by a statement.
    async fn exec(&mut self, sql: &str, params: &[Val]) -> Result<u64, ObjectError>;
    /// Statements without parameters (savepoints).
    async fn batch(&mut self, sql: &str) -> Result<(), ObjectError>;
    /// Holds the named keys of `scope` (a bucket's object keys, an upload's part numbers)
    /// until the commit, in one order whatever the order given.
    async fn lock_keys(&mut self, scope: &str, keys: &[&str]) -> Result<(), ObjectError>;
    /// Holds bucket `name` until the commit: shared by writes inside it, alone for a change
    /// of the bucket itself (taken before any key).
    async fn lock_bucket(&mut self, name: &str, alone: bool) -> Result<(), ObjectError>;
    /// Whether this is PostgreSQL.
    fn postgres(&self) -> bool;

    /// The first row, if any.
    async fn row(&mut self, sql: &str, params: &[Val]) -> Result<Option<Row>, ObjectError> {
        Ok(self.rows(sql, params).await?.into_iter().next())
    }

    /// `sql` followed by the clause that takes `lock`.
    fn locking(&self, sql: &str, lock: Lock) -> String {
        match (self.postgres(), lock) {
            (true, Lock::Share) => format!("{sql} FOR SHARE"),
            (true, Lock::Update) => format!("{sql} FOR UPDATE"),
            _ => sql.to_string(),
        }
    }
}

// ---- SQLite -------------------------------------------------------------------------------

/// A transaction on `objects.db`'s writer thread.
pub(crate) struct Lite<'c>(&'c rusqlite::Connection);

impl<'c> Lite<'c> {
    pub fn new(conn: &'c rusqlite::Connection) -> Lite<'c> {
        Lite(conn)
    }
}

impl rusqlite::ToSql for Val {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Val::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Val::Int(v) => ToSqlOutput::Borrowed(ValueRef::Integer(*v)),
            Val::Text(v) => ToSqlOutput::Borrowed(ValueRef::Text(v.as_bytes())),
            Val::Bytes(v) => ToSqlOutput::Borrowed(ValueRef::Blob(v)),
        })
    }
}

fn lite_error(e: rusqlite::Error) -> ObjectError {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DiskFull) => ObjectError::StorageFull,
        _ => ObjectError::Internal(e.to_string()),
    }
}

impl Db for Lite<'_> {
    async fn rows(&mut self, sql: &str, params: &[Val]) -> Result<Vec<Row>, ObjectError> {
        let mut st = self.0.prepare_cached(sql).map_err(lite_error)?;
        let n = st.column_count();
        let mut rows = st.query(rusqlite::params_from_iter(params)).map_err(lite_error)?;
        let mut out = Vec::new();
        while let Some(r) = rows.next().map_err(lite_error)? {
            let mut row = Vec::with_capacity(n);
            for i in 0..n {
                row.push(match r.get_ref(i).map_err(lite_error)? {
                    ValueRef::Null => Val::Null,
                    ValueRef::Integer(v) => Val::Int(v),
                    ValueRef::Real(v) => Val::Int(v as i64),
                    ValueRef::Text(t) => Val::Text(String::from_utf8_lossy(t).into_owned()),
                    ValueRef::Blob(b) => Val::Bytes(b.to_vec()),
                });
            }
            out.push(Row(row));
        }
        Ok(out)
    }

    async fn exec(&mut self, sql: &str, params: &[Val]) -> Result<u64, ObjectError> {
        let mut st = self.0.prepare_cached(sql).map_err(lite_error)?;
        st.execute(rusqlite::params_from_iter(params)).map(|n| n as u64).map_err(lite_error)
    }

    async fn batch(&mut self, sql: &str) -> Result<(), ObjectError> {
        self.0.execute_batch(sql).map_err(lite_error)
    }

    async fn lock_keys(&mut self, _scope: &str, _keys: &[&str]) -> Result<(), ObjectError> {
        Ok(())
    }

    async fn lock_bucket(&mut self, _name: &str, _alone: bool) -> Result<(), ObjectError> {
        Ok(())
    }

    fn postgres(&self) -> bool {
        false
    }
}

// ---- PostgreSQL ---------------------------------------------------------------------------

impl ToSql for Val {
    /// Encoded as the statement's parameter type asks (integers of any width, booleans,
    /// text as `bytea` for key columns).
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        match self {
            Val::Null => Ok(IsNull::Yes),
            Val::Int(v) => match *ty {
                Type::INT8 => v.to_sql(ty, out),
                Type::INT4 => i32::try_from(*v)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(*v)?.to_sql(ty, out),
                Type::BOOL => (*v != 0).to_sql(ty, out),
                _ => Err(format!("an integer for a parameter of type {ty}").into()),
            },
            Val::Text(v) => match *ty {
                Type::BYTEA => v.as_bytes().to_sql(ty, out),
                _ => v.as_str().to_sql(ty, out),
            },
            Val::Bytes(v) => match *ty {
                Type::BYTEA => v.as_slice().to_sql(ty, out),
                _ => std::str::from_utf8(v)?.to_sql(ty, out),
            },
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    tokio_postgres::types::to_sql_checked!();
}

pub(crate) fn pg_error(e: tokio_postgres::Error) -> ObjectError {
    ObjectError::Internal(format!("the objects' database: {}", nimbus_store::pg::backend(e)))
}

/// `?N` as `$N` (the statements never hold a `?` otherwise).
pub(crate) fn dollars(sql: &str) -> String {
    sql.replace('?', "$")
}

fn pg_value(row: &tokio_postgres::Row, i: usize) -> Result<Val, ObjectError> {
    let ty = row.columns()[i].type_().clone();
    let v = match ty {
        Type::INT8 => row.try_get::<_, Option<i64>>(i).map(|v| v.map(Val::Int)),
        Type::INT4 => row.try_get::<_, Option<i32>>(i).map(|v| v.map(|v| Val::Int(v.into()))),
        Type::INT2 => row.try_get::<_, Option<i16>>(i).map(|v| v.map(|v| Val::Int(v.into()))),
        Type::BOOL => row.try_get::<_, Option<bool>>(i).map(|v| v.map(|v| Val::Int(v.into()))),
        Type::BYTEA => row.try_get::<_, Option<Vec<u8>>>(i).map(|v| v.map(Val::Bytes)),
        _ => row.try_get::<_, Option<String>>(i).map(|v| v.map(Val::Text)),
    };
    Ok(v.map_err(pg_error)?.unwrap_or(Val::Null))
}

fn pg_params(params: &[Val]) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(|p| p as &(dyn ToSql + Sync)).collect()
}

/// Statements each on its own (reads that need no snapshot: a HEAD, a listing's page).
impl Db for deadpool_postgres::Object {
    async fn rows(&mut self, sql: &str, params: &[Val]) -> Result<Vec<Row>, ObjectError> {
        let statement = self.prepare_cached(&dollars(sql)).await.map_err(pg_error)?;
        let rows = self.query(&statement, &pg_params(params)).await.map_err(pg_error)?;
        rows.iter().map(|r| (0..r.len()).map(|i| pg_value(r, i)).collect::<Result<Vec<_>, _>>().map(Row)).collect()
    }

    async fn exec(&mut self, _sql: &str, _params: &[Val]) -> Result<u64, ObjectError> {
        Err(ObjectError::internal("a read without a transaction cannot write"))
    }

    async fn batch(&mut self, _sql: &str) -> Result<(), ObjectError> {
        Err(ObjectError::internal("a read without a transaction cannot write"))
    }

    async fn lock_keys(&mut self, _scope: &str, _keys: &[&str]) -> Result<(), ObjectError> {
        Err(ObjectError::internal("a read without a transaction takes no lock"))
    }

    async fn lock_bucket(&mut self, _name: &str, _alone: bool) -> Result<(), ObjectError> {
        Err(ObjectError::internal("a read without a transaction takes no lock"))
    }

    fn postgres(&self) -> bool {
        true
    }
}

impl Db for deadpool_postgres::Transaction<'_> {
    async fn rows(&mut self, sql: &str, params: &[Val]) -> Result<Vec<Row>, ObjectError> {
        let statement = self.prepare_cached(&dollars(sql)).await.map_err(pg_error)?;
        let rows = self.query(&statement, &pg_params(params)).await.map_err(pg_error)?;
        rows.iter().map(|r| (0..r.len()).map(|i| pg_value(r, i)).collect::<Result<Vec<_>, _>>().map(Row)).collect()
    }

    async fn exec(&mut self, sql: &str, params: &[Val]) -> Result<u64, ObjectError> {
        let statement = self.prepare_cached(&dollars(sql)).await.map_err(pg_error)?;
        self.execute(&statement, &pg_params(params)).await.map_err(pg_error)
    }

    async fn batch(&mut self, sql: &str) -> Result<(), ObjectError> {
        self.batch_execute(sql).await.map_err(pg_error)
    }

    async fn lock_keys(&mut self, scope: &str, keys: &[&str]) -> Result<(), ObjectError> {
        let mut locks: Vec<i64> =
            keys.iter().map(|k| nimbus_store::pg::advisory_key(&[b"object", scope.as_bytes(), k.as_bytes()])).collect();
        locks.sort_unstable();
        locks.dedup();
        match locks.as_slice() {
            [] => Ok(()),
            [one] => nimbus_store::pg::hold(self, *one, nimbus_store::pg::Hold::Exclusive)
                .await
                .map_err(|e| ObjectError::Internal(format!("the objects' database: {e}"))),
            _ => {
                let statement = self.prepare_cached("SELECT obj_lock($1)").await.map_err(pg_error)?;
                self.execute(&statement, &[&locks]).await.map_err(pg_error).map(drop)
            }
        }
    }

    async fn lock_bucket(&mut self, name: &str, alone: bool) -> Result<(), ObjectError> {
        let how = if alone { nimbus_store::pg::Hold::Exclusive } else { nimbus_store::pg::Hold::Shared };
        nimbus_store::pg::hold(self, nimbus_store::pg::advisory_key(&[b"bucket", name.as_bytes()]), how)
            .await
            .map_err(|e| ObjectError::Internal(format!("the objects' database: {e}")))
    }

    fn postgres(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_in_postgres_form() {
        let cases = [
            ("SELECT 1 FROM t WHERE a = ?1 AND b = ?2", "SELECT 1 FROM t WHERE a = $1 AND b = $2"),
            ("UPDATE t SET x = ?12", "UPDATE t SET x = $12"),
            ("SELECT 1", "SELECT 1"),
        ];
        for (sqlite, postgres) in cases {
            assert_eq!(dollars(sqlite), postgres);
        }
    }

    #[test]
    fn rows_read_by_kind() {
        let row = Row(vec![Val::Int(3), Val::Null, Val::Bytes(b"k\xC3\xA9".to_vec()), Val::Text("t".into()), Val::Bytes(vec![0xFF])]);
        assert_eq!(row.int(0), Ok(3));
        assert_eq!(row.bool(0), Ok(true));
        assert_eq!(row.opt_int(1), Ok(None));
        row.int(1).expect_err("NULL is no integer");
        assert_eq!(row.text(2).as_deref(), Ok("ké"));
        assert_eq!(row.opt_text(3), Ok(Some("t".into())));
        row.text(4).expect_err("bytes that are not UTF-8 are no text");
        row.int(3).expect_err("text is no integer");
        row.int(9).expect_err("no such column");
    }
}
