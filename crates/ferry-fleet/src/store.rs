//! The server's store: SQLite through sqlx, with a versioned schema that
//! migrates itself forward on open and refuses a database written by a
//! newer ferry. Holds enrolled devices (only a hash of each token) and the
//! events they delivered, deduplicated by `UNIQUE(device_id, seq)`.
//!
//! Not for deciding who may read what (that is the API's) nor for making
//! tokens. Queries are plain `sqlx::query` strings so that building needs
//! no database; the same SQL is meant to run on PostgreSQL later.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

/// The schema's migrations, oldest first: migration `i` (0-based) brings
/// the schema from version `i` to `i + 1`. Append only; never edit one that
/// shipped, a database in the field already ran it.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_devices_events.sql"),
    include_str!("../migrations/0002_groups_rollouts.sql"),
    include_str!("../migrations/0003_command_logs.sql"),
    include_str!("../migrations/0004_rollout_indexes.sql"),
];

/// The schema version this binary writes and reads.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the database {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: sqlx::Error,
    },
    #[error(
        "the database {path} has schema version {found}, newer than this ferry's {supported}: \
         it was written by a newer ferry; run that one (a downgrade would lose data)"
    )]
    Newer {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error("cannot migrate the database {path} to schema version {version}: {source}")]
    Migrate {
        path: PathBuf,
        version: i64,
        #[source]
        source: sqlx::Error,
    },
    #[error("database error: {0}")]
    Query(#[from] sqlx::Error),
}

/// One enrolled device as operators see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRecord {
    pub id: String,
    pub enrolled_at: String,
    pub last_seen: Option<String>,
    pub os: Option<String>,
    pub version: Option<String>,
    /// Every event with a seq up to this one is stored.
    pub acked_seq: i64,
    pub events: i64,
}

/// One stored event, its JSON as the device sent it (re-serialised).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    pub seq: i64,
    pub received_at: String,
    pub event: serde_json::Value,
}

/// One uploaded run log, without its content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogRecord {
    pub command_id: String,
    pub rollout_id: String,
    pub uploaded_at: String,
    pub bytes: i64,
}

/// What storing a batch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Stored {
    /// Events new to the store.
    pub stored: u64,
    /// Events it already held (a batch sent again), acknowledged all the same.
    pub duplicates: u64,
    /// The highest seq with every seq from 1 up to it stored.
    pub acked_seq: i64,
}

#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
}

impl Store {
    /// Opens (creating) the database at `path` and brings its schema to
    /// [`SCHEMA_VERSION`], or refuses one that is newer.
    pub async fn open(path: &Path) -> Result<Store, StoreError> {
        let open_error = |source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        let options = SqliteConnectOptions::from_str("sqlite:")
            .map_err(open_error)?
            .filename(path)
            .create_if_missing(true)
            // WAL lets readers (polls, operators) go on while a batch is
            // written; FULL makes a committed batch survive a power cut,
            // since its acknowledgement lets the device drop it.
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(open_error)?;
        let store = Store { pool };
        store.migrate(path).await?;
        Ok(store)
    }

    async fn migrate(&self, path: &Path) -> Result<(), StoreError> {
        sqlx::query("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            .execute(&self.pool)
            .await?;
        let found = self.schema_version().await?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::Newer {
                path: path.to_path_buf(),
                found,
                supported: SCHEMA_VERSION,
            });
        }
        for (index, sql) in MIGRATIONS.iter().enumerate().skip(found.max(0) as usize) {
            let version = index as i64 + 1;
            let failed = |source| StoreError::Migrate {
                path: path.to_path_buf(),
                version,
                source,
            };
            // One transaction per migration, its version row included: a
            // crash leaves the schema at the old version or the new one.
            let mut tx = self.pool.begin().await.map_err(failed)?;
            sqlx::raw_sql(sql).execute(&mut *tx).await.map_err(failed)?;
            sqlx::query("DELETE FROM schema_version")
                .execute(&mut *tx)
                .await
                .map_err(failed)?;
            sqlx::query("INSERT INTO schema_version (version) VALUES (?)")
                .bind(version)
                .execute(&mut *tx)
                .await
                .map_err(failed)?;
            tx.commit().await.map_err(failed)?;
        }
        Ok(())
    }

    /// The schema version the database is at (0 when new).
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COALESCE(MAX(version), 0) FROM schema_version")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<i64, _>(0)?)
    }

    /// Records a new device under `id` with the hash of its token.
    pub async fn enrol(
        &self,
        id: &str,
        token_hash: &str,
        now: &str,
        os: Option<&str>,
        version: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO devices (id, token_hash, enrolled_at, os, version) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(id)
        .bind(token_hash)
        .bind(now)
        .bind(os)
        .bind(version)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The device whose token hashes to `token_hash`, if any.
    pub async fn device_for_token(&self, token_hash: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT id FROM devices WHERE token_hash = ?")
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(row) => Some(row.try_get::<String, _>(0)?),
            None => None,
        })
    }

    /// Notes that a device polled, with the OS and version it reports
    /// (kept as they were when it reports none).
    pub async fn seen(
        &self,
        id: &str,
        now: &str,
        os: Option<&str>,
        version: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE devices SET last_seen = ?, os = COALESCE(?, os), version = COALESCE(?, version) \
             WHERE id = ?",
        )
        .bind(now)
        .bind(os)
        .bind(version)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Stores a batch of `(seq, event JSON)` for `device` in one
    /// transaction; a seq it already holds is counted as a duplicate and
    /// left as it was.
    pub async fn insert_events(
        &self,
        device: &str,
        events: &[(i64, String)],
        now: &str,
    ) -> Result<Stored, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut stored = 0;
        // The first statement writes, so the transaction takes SQLite's
        // write lock at once (waiting on busy_timeout) instead of failing
        // when it would upgrade a read lock later.
        for (seq, event) in events {
            let result = sqlx::query(
                "INSERT INTO events (device_id, seq, received_at, event) VALUES (?, ?, ?, ?) \
                 ON CONFLICT (device_id, seq) DO NOTHING",
            )
            .bind(device)
            .bind(seq)
            .bind(now)
            .bind(event)
            .execute(&mut *tx)
            .await?;
            stored += result.rows_affected();
        }
        let row = sqlx::query("SELECT acked_seq FROM devices WHERE id = ?")
            .bind(device)
            .fetch_one(&mut *tx)
            .await?;
        let mut acked: i64 = row.try_get(0)?;
        let later =
            sqlx::query("SELECT seq FROM events WHERE device_id = ? AND seq > ? ORDER BY seq")
                .bind(device)
                .bind(acked)
                .fetch_all(&mut *tx)
                .await?;
        for row in later {
            let seq: i64 = row.try_get(0)?;
            if seq != acked + 1 {
                break;
            }
            acked = seq;
        }
        sqlx::query("UPDATE devices SET acked_seq = ?, last_seen = ? WHERE id = ?")
            .bind(acked)
            .bind(now)
            .bind(device)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Stored {
            stored,
            duplicates: events.len() as u64 - stored,
            acked_seq: acked,
        })
    }

    /// The highest contiguous seq stored for `device`.
    pub async fn acked_seq(&self, device: &str) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT acked_seq FROM devices WHERE id = ?")
            .bind(device)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(row) => row.try_get(0)?,
            None => 0,
        })
    }

    const DEVICE_COLUMNS: &'static str =
        "SELECT d.id, d.enrolled_at, d.last_seen, d.os, d.version, d.acked_seq, \
         (SELECT COUNT(*) FROM events e WHERE e.device_id = d.id) FROM devices d";

    /// Every enrolled device, oldest enrolment first.
    pub async fn devices(&self) -> Result<Vec<DeviceRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "{} ORDER BY d.enrolled_at, d.id",
            Self::DEVICE_COLUMNS
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(device_record).collect()
    }

    /// One device, if enrolled.
    pub async fn device(&self, id: &str) -> Result<Option<DeviceRecord>, StoreError> {
        let row = sqlx::query(&format!("{} WHERE d.id = ?", Self::DEVICE_COLUMNS))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(device_record).transpose()
    }

    /// A device's events with a seq after `after`, at most `limit`, in seq order.
    pub async fn events(
        &self,
        device: &str,
        after: i64,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, received_at, event FROM events WHERE device_id = ? AND seq > ? \
             ORDER BY seq LIMIT ?",
        )
        .bind(device)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let text: String = row.try_get(2)?;
                Ok(StoredEvent {
                    seq: row.try_get(0)?,
                    received_at: row.try_get(1)?,
                    // Stored only after it parsed as an event; a row that
                    // no longer parses is shown as the text it is.
                    event: serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
                })
            })
            .collect()
    }

    /// The rollout of `command`, when it was assigned to `device` (and only
    /// then: another device's command is none of this one's business).
    pub async fn command_rollout(
        &self,
        device: &str,
        command: &str,
    ) -> Result<Option<String>, StoreError> {
        let row = sqlx::query(
            "SELECT rollout_id FROM rollout_devices WHERE device_id = ? AND command_id = ?",
        )
        .bind(device)
        .bind(command)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    /// Keeps the log of `device`'s run of `command`, replacing an earlier
    /// upload of it (an agent that did not see the answer sends it again).
    pub async fn put_log(
        &self,
        device: &str,
        command: &str,
        rollout: &str,
        content: &[u8],
        now: &str,
    ) -> Result<LogRecord, StoreError> {
        let bytes = i64::try_from(content.len()).unwrap_or(i64::MAX);
        sqlx::query(
            "INSERT INTO command_logs (device_id, command_id, rollout_id, uploaded_at, bytes, content) \
             VALUES (?, ?, ?, ?, ?, ?) \
             ON CONFLICT (device_id, command_id) DO UPDATE SET \
             uploaded_at = excluded.uploaded_at, bytes = excluded.bytes, content = excluded.content",
        )
        .bind(device)
        .bind(command)
        .bind(rollout)
        .bind(now)
        .bind(bytes)
        .bind(content)
        .execute(&self.pool)
        .await?;
        Ok(LogRecord {
            command_id: command.to_string(),
            rollout_id: rollout.to_string(),
            uploaded_at: now.to_string(),
            bytes,
        })
    }

    /// A device's uploaded logs, oldest first.
    pub async fn logs(&self, device: &str) -> Result<Vec<LogRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT command_id, rollout_id, uploaded_at, bytes FROM command_logs \
             WHERE device_id = ? ORDER BY uploaded_at, command_id",
        )
        .bind(device)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(LogRecord {
                    command_id: row.try_get(0)?,
                    rollout_id: row.try_get(1)?,
                    uploaded_at: row.try_get(2)?,
                    bytes: row.try_get(3)?,
                })
            })
            .collect()
    }

    /// The content of one uploaded log.
    pub async fn log(&self, device: &str, command: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let row =
            sqlx::query("SELECT content FROM command_logs WHERE device_id = ? AND command_id = ?")
                .bind(device)
                .bind(command)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    /// The pool, for the rollouts' queries (crate::rollout).
    pub(crate) fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Closes the pool, waiting for connections to finish.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn device_record(row: &sqlx::sqlite::SqliteRow) -> Result<DeviceRecord, StoreError> {
    Ok(DeviceRecord {
        id: row.try_get(0)?,
        enrolled_at: row.try_get(1)?,
        last_seen: row.try_get(2)?,
        os: row.try_get(3)?,
        version: row.try_get(4)?,
        acked_seq: row.try_get(5)?,
        events: row.try_get(6)?,
    })
}
