//! The two backends of the store: `memory` for one replica, Redis for many. Raw strings only;
//! keys and values are decided by the typed API in `store/mod.rs`. Single use is an atomic take.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use super::StoreError;

/// Where protocol state lives.
#[derive(Clone)]
pub enum Store {
    Memory(Arc<MemoryStore>),
    Redis(RedisStore),
}

/// The default prefix of every key: installations sharing a Redis set their own.
pub const DEFAULT_PREFIX: &str = "kube-oidc:";

/// A Redis connection and the prefix of this installation's keys.
#[derive(Clone)]
pub struct RedisStore {
    conn: redis::aio::ConnectionManager,
    prefix: std::sync::Arc<str>,
    /// Failed operations, for the provider's metrics.
    errors: prometheus_client::metrics::counter::Counter,
}

impl RedisStore {
    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// A command on one of the store's keys.
    fn keyed(&self, command: &str, key: &str) -> redis::Cmd {
        let mut cmd = redis::cmd(command);
        cmd.arg(self.key(key));
        cmd
    }
}

/// Runs a command on the shared connection (the manager reconnects by itself).
async fn query<T: redis::FromRedisValue>(
    c: &RedisStore,
    cmd: &redis::Cmd,
) -> Result<T, StoreError> {
    counted(c, cmd.query_async(&mut c.conn.clone()).await)
}

/// A command's result, its failure counted.
fn counted<T>(c: &RedisStore, r: Result<T, redis::RedisError>) -> Result<T, StoreError> {
    r.map_err(|e| {
        c.errors.inc();
        e.into()
    })
}

fn ms(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl Store {
    pub fn memory() -> Self {
        Store::Memory(Arc::new(MemoryStore::default()))
    }

    /// Connects to `redis://HOST:PORT[/DB]`; the connection manager reconnects by itself.
    pub async fn redis(url: &str, prefix: &str) -> Result<Self, StoreError> {
        Self::redis_with_ca(url, prefix, None).await
    }

    /// Like [`Store::redis`]; a `rediss://` server's certificate is checked against `ca` (PEM),
    /// else against the system's trusted roots.
    pub async fn redis_with_ca(
        url: &str,
        prefix: &str,
        ca: Option<Vec<u8>>,
    ) -> Result<Self, StoreError> {
        let client = match ca {
            Some(pem) => redis::Client::build_with_tls(
                url,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem),
                },
            )?,
            None => redis::Client::open(url)?,
        };
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(1);
        let manager = redis::aio::ConnectionManager::new_with_config(client, config).await?;
        Ok(Store::Redis(RedisStore {
            conn: manager,
            prefix: prefix.into(),
            errors: Default::default(),
        }))
    }

    pub(super) async fn put_raw(
        &self,
        key: &str,
        value: &str,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        match self {
            Store::Memory(m) => {
                m.put(key, value, ttl);
                Ok(())
            }
            Store::Redis(c) => {
                let mut cmd = c.keyed("SET", key);
                cmd.arg(value).arg("PX").arg(ms(ttl));
                query(c, &cmd).await
            }
        }
    }

    pub(super) async fn get_raw(&self, key: &str) -> Result<Option<String>, StoreError> {
        match self {
            Store::Memory(m) => Ok(m.get(key)),
            Store::Redis(c) => query(c, &c.keyed("GET", key)).await,
        }
    }

    /// Returns and removes the value in one step: of concurrent takers exactly one gets it.
    pub(super) async fn take_raw(&self, key: &str) -> Result<Option<String>, StoreError> {
        match self {
            Store::Memory(m) => Ok(m.take(key)),
            Store::Redis(c) => query(c, &c.keyed("GETDEL", key)).await,
        }
    }

    pub(super) async fn delete_raw(&self, key: &str) -> Result<(), StoreError> {
        match self {
            Store::Memory(m) => {
                m.take(key);
                Ok(())
            }
            Store::Redis(c) => query(c, &c.keyed("DEL", key)).await,
        }
    }

    /// Increments a counter that expires `ttl` after its first increment.
    pub(super) async fn incr_raw(&self, key: &str, ttl: Duration) -> Result<u64, StoreError> {
        match self {
            Store::Memory(m) => Ok(m.incr(key, ttl)),
            Store::Redis(c) => {
                let script = redis::Script::new(
                    "local v = redis.call('INCR', KEYS[1]) \
                     if v == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end \
                     return v",
                );
                counted(
                    c,
                    script
                        .key(c.key(key))
                        .arg(ms(ttl))
                        .invoke_async(&mut c.conn.clone())
                        .await,
                )
            }
        }
    }

    /// Takes one back from a counter that exists (never below zero, never creating it).
    pub(super) async fn decr_raw(&self, key: &str) -> Result<(), StoreError> {
        match self {
            Store::Memory(m) => {
                m.decr(key);
                Ok(())
            }
            Store::Redis(c) => {
                let script = redis::Script::new(
                    "local v = redis.call('GET', KEYS[1]) \
                     if v and tonumber(v) > 0 then redis.call('DECR', KEYS[1]) end \
                     return 0",
                );
                let _: i64 = counted(
                    c,
                    script
                        .key(c.key(key))
                        .invoke_async(&mut c.conn.clone())
                        .await,
                )?;
                Ok(())
            }
        }
    }

    /// Sets `field` of the map under `key` (kept until deleted).
    pub(super) async fn map_put_raw(
        &self,
        key: &str,
        field: &str,
        value: &str,
    ) -> Result<(), StoreError> {
        match self {
            Store::Memory(m) => {
                m.lock_maps()
                    .entry(key.to_string())
                    .or_default()
                    .insert(field.to_string(), value.to_string());
                Ok(())
            }
            Store::Redis(c) => {
                let mut cmd = c.keyed("HSET", key);
                cmd.arg(field).arg(value);
                query(c, &cmd).await
            }
        }
    }

    pub(super) async fn map_get_raw(
        &self,
        key: &str,
        field: &str,
    ) -> Result<Option<String>, StoreError> {
        match self {
            Store::Memory(m) => Ok(m.lock_maps().get(key).and_then(|f| f.get(field)).cloned()),
            Store::Redis(c) => {
                let mut cmd = c.keyed("HGET", key);
                cmd.arg(field);
                query(c, &cmd).await
            }
        }
    }

    /// Every field of the map under `key`.
    pub(super) async fn map_all_raw(&self, key: &str) -> Result<Vec<(String, String)>, StoreError> {
        match self {
            Store::Memory(m) => Ok(m
                .lock_maps()
                .get(key)
                .map(|f| f.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default()),
            Store::Redis(c) => {
                let all: HashMap<String, String> = query(c, &c.keyed("HGETALL", key)).await?;
                Ok(all.into_iter().collect())
            }
        }
    }

    pub(super) async fn map_len_raw(&self, key: &str) -> Result<usize, StoreError> {
        match self {
            Store::Memory(m) => Ok(m.lock_maps().get(key).map_or(0, HashMap::len)),
            Store::Redis(c) => query(c, &c.keyed("HLEN", key)).await,
        }
    }

    pub(super) async fn map_delete_raw(&self, key: &str, field: &str) -> Result<(), StoreError> {
        match self {
            Store::Memory(m) => {
                if let Some(f) = m.lock_maps().get_mut(key) {
                    f.remove(field);
                }
                Ok(())
            }
            Store::Redis(c) => {
                let mut cmd = c.keyed("HDEL", key);
                cmd.arg(field);
                query(c, &cmd).await
            }
        }
    }

    /// The counter of failed operations (the memory store never fails).
    pub fn errors(&self) -> prometheus_client::metrics::counter::Counter {
        match self {
            Store::Memory(_) => Default::default(),
            Store::Redis(c) => c.errors.clone(),
        }
    }

    /// Whether the store answers (readiness).
    pub async fn ping(&self) -> Result<(), StoreError> {
        match self {
            Store::Memory(_) => Ok(()),
            Store::Redis(c) => query(c, &redis::cmd("PING")).await,
        }
    }
}

/// The in-process store. Its lock is never held across an await.
#[derive(Default)]
pub struct MemoryStore {
    entries: Mutex<HashMap<String, (String, Instant)>>,
    /// Records kept until deleted, by map and field.
    maps: Mutex<HashMap<String, HashMap<String, String>>>,
}

type Maps = HashMap<String, HashMap<String, String>>;

impl MemoryStore {
    fn lock_maps(&self) -> std::sync::MutexGuard<'_, Maps> {
        self.maps.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (String, Instant)>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn put(&self, key: &str, value: &str, ttl: Duration) {
        let now = Instant::now();
        let mut entries = self.lock();
        // Sweep expired entries now and then, so memory follows live state.
        if entries.len() % 1024 == 1023 {
            entries.retain(|_, (_, exp)| *exp > now);
        }
        entries.insert(key.to_string(), (value.to_string(), now + ttl));
    }

    fn get(&self, key: &str) -> Option<String> {
        let entries = self.lock();
        entries
            .get(key)
            .filter(|(_, exp)| *exp > Instant::now())
            .map(|(v, _)| v.clone())
    }

    fn take(&self, key: &str) -> Option<String> {
        self.lock()
            .remove(key)
            .filter(|(_, exp)| *exp > Instant::now())
            .map(|(v, _)| v)
    }

    fn incr(&self, key: &str, ttl: Duration) -> u64 {
        let now = Instant::now();
        let mut entries = self.lock();
        let entry = entries
            .entry(key.to_string())
            .or_insert_with(|| ("0".into(), now + ttl));
        if entry.1 <= now {
            *entry = ("0".into(), now + ttl);
        }
        let n = entry.0.parse::<u64>().unwrap_or(0) + 1;
        entry.0 = n.to_string();
        n
    }

    fn decr(&self, key: &str) {
        let mut entries = self.lock();
        if let Some(entry) = entries.get_mut(key) {
            let n = entry.0.parse::<u64>().unwrap_or(0).saturating_sub(1);
            entry.0 = n.to_string();
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    /// The suite every store passes.
    pub async fn suite(store: &Store) {
        let k = format!("suite-{:?}", Instant::now());
        assert_eq!(store.get_raw(&k).await.unwrap(), None);
        store
            .put_raw(&k, "v1", Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(store.get_raw(&k).await.unwrap().as_deref(), Some("v1"));
        assert_eq!(store.take_raw(&k).await.unwrap().as_deref(), Some("v1"));
        assert_eq!(store.take_raw(&k).await.unwrap(), None, "taken twice");

        // Expiry by TTL.
        store
            .put_raw(&k, "short", Duration::from_millis(100))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(store.get_raw(&k).await.unwrap(), None);
        assert_eq!(store.take_raw(&k).await.unwrap(), None);

        // Exactly one of many concurrent takers wins.
        for round in 0..20 {
            let key = format!("{k}-race-{round}");
            store
                .put_raw(&key, "once", Duration::from_secs(10))
                .await
                .unwrap();
            let takers: Vec<_> = (0..8)
                .map(|_| {
                    let s = store.clone();
                    let key = key.clone();
                    tokio::spawn(async move { s.take_raw(&key).await.unwrap() })
                })
                .collect();
            let mut won = 0;
            for t in takers {
                won += usize::from(t.await.unwrap().is_some());
            }
            assert_eq!(won, 1, "round {round}");
        }

        // Counters with a window.
        let c = format!("{k}-counter");
        assert_eq!(
            store
                .incr_raw(&c, Duration::from_millis(300))
                .await
                .unwrap(),
            1
        );
        assert_eq!(
            store
                .incr_raw(&c, Duration::from_millis(300))
                .await
                .unwrap(),
            2
        );
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(
            store
                .incr_raw(&c, Duration::from_millis(300))
                .await
                .unwrap(),
            1
        );

        store
            .put_raw(&k, "x", Duration::from_secs(5))
            .await
            .unwrap();
        store.delete_raw(&k).await.unwrap();
        assert_eq!(store.get_raw(&k).await.unwrap(), None);

        // Maps: fields kept until deleted.
        let m = format!("{k}-map");
        assert_eq!(store.map_len_raw(&m).await.unwrap(), 0);
        store.map_put_raw(&m, "a", "1").await.unwrap();
        store.map_put_raw(&m, "b", "2").await.unwrap();
        store.map_put_raw(&m, "a", "3").await.unwrap();
        assert_eq!(
            store.map_get_raw(&m, "a").await.unwrap().as_deref(),
            Some("3")
        );
        assert_eq!(store.map_get_raw(&m, "c").await.unwrap(), None);
        let mut all = store.map_all_raw(&m).await.unwrap();
        all.sort();
        assert_eq!(all, [("a".into(), "3".into()), ("b".into(), "2".into())]);
        store.map_delete_raw(&m, "a").await.unwrap();
        assert_eq!(store.map_len_raw(&m).await.unwrap(), 1);
        store.ping().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn memory_store_passes_the_suite() {
        suite(&Store::memory()).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redis_store_passes_the_suite() {
        let server = kube_oidc_tests::RedisServer::start();
        let store = Store::redis(&server.url, DEFAULT_PREFIX)
            .await
            .expect("connect to redis");
        suite(&store).await;
    }

    /// Two installations sharing one Redis, with their own prefixes, do not see each other's
    /// keys.
    #[tokio::test]
    async fn key_prefixes_keep_installations_apart() {
        let server = kube_oidc_tests::RedisServer::start();
        let a = Store::redis(&server.url, "one:").await.unwrap();
        let b = Store::redis(&server.url, "two:").await.unwrap();
        a.put_raw("session:x", "a's", Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(b.get_raw("session:x").await.unwrap(), None);
        assert_eq!(
            a.get_raw("session:x").await.unwrap().as_deref(),
            Some("a's")
        );
    }

    #[tokio::test]
    async fn a_dead_redis_is_an_error_not_a_hang() {
        let mut server = kube_oidc_tests::RedisServer::start();
        let store = Store::redis(&server.url, DEFAULT_PREFIX).await.unwrap();
        server.stop();
        let started = Instant::now();
        let err = store.get_raw("anything").await.unwrap_err();
        assert!(matches!(err, StoreError::Unavailable(_)));
        assert!(started.elapsed() < Duration::from_secs(10));
    }
}
