//! Watching the namespaces a component is configured for: all of them, one, or a list.
//!
//! The Kubernetes API has no watch over a set of namespaces, and a ServiceAccount that is granted
//! access namespace by namespace (the chart's `clientNamespaces`) is forbidden to watch them all.
//! A list therefore becomes one watch per namespace, merged into one stream that a single
//! reflector store (and so a single controller) can consume.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    fmt::Debug,
    hash::Hash,
};

use futures::{Stream, StreamExt, stream::BoxStream};
use kube::{
    Api, Client, Resource, ResourceExt,
    runtime::{
        WatchStreamExt,
        reflector::{self, Store},
        watcher::{self, Event, watcher},
    },
};
use serde::de::DeserializeOwned;

/// `*` in a namespace list means every namespace.
pub const ALL_NAMESPACES: &str = "*";

/// The namespaces to watch one by one, or `None` for one cluster-wide watch (the list is empty or
/// contains `*`).
pub fn each_namespace(namespaces: &[String]) -> Option<Vec<String>> {
    if namespaces.is_empty() || namespaces.iter().any(|n| n == ALL_NAMESPACES) {
        return None;
    }
    let unique: std::collections::BTreeSet<&String> = namespaces.iter().collect();
    Some(unique.into_iter().cloned().collect())
}

/// One `Api` per listed namespace, or a single cluster-wide `Api`, paired with its namespace.
fn apis<K>(client: &Client, namespaces: &[String]) -> Vec<(Option<String>, Api<K>)>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match each_namespace(namespaces) {
        None => vec![(None, Api::all(client.clone()))],
        Some(list) => list
            .into_iter()
            .map(|ns| (Some(ns.clone()), Api::namespaced(client.clone(), &ns)))
            .collect(),
    }
}

type Events<K> = BoxStream<'static, Result<Event<K>, watcher::Error>>;

/// A store of `K` over every api, and the stream that keeps it current (poll it to drive the
/// watches). The stream's events are those of a single watch: an `Init` .. `InitDone` marks the
/// moment every namespace has been listed, then `Apply` and `Delete` follow.
pub fn reflect<K>(
    client: &Client,
    namespaces: &[String],
    config: watcher::Config,
) -> (
    Store<K>,
    impl Stream<Item = Result<Event<K>, watcher::Error>> + Send + use<K>,
)
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Debug
        + Send
        + Sync
        + 'static,
    K::DynamicType: Default + Eq + Hash + Clone + Send + Sync,
{
    let (reader, writer) = reflector::store::<K>();
    let events = merged(apis(client, namespaces), config, reader.clone());
    (reader.clone(), reflector::reflector(writer, events))
}

/// Objects touched in any of the apis: for watches that only trigger reconciles.
pub fn touched<K>(
    client: &Client,
    namespaces: &[String],
    config: watcher::Config,
) -> impl Stream<Item = Result<K, watcher::Error>> + Send + use<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Debug
        + Send
        + Sync
        + 'static,
    K::DynamicType: Default,
{
    futures::stream::select_all(apis(client, namespaces).into_iter().map(|(_, api)| {
        watcher(api, config.clone())
            .default_backoff()
            .touched_objects()
            .boxed()
    }))
}

/// The events of several watches as the events of one. A single watch passes through as is.
fn merged<K>(
    mut apis: Vec<(Option<String>, Api<K>)>,
    config: watcher::Config,
    reader: Store<K>,
) -> Events<K>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + Hash + Clone + Send + Sync,
{
    if apis.len() == 1
        && let Some((_, api)) = apis.pop()
    {
        return watcher(api, config).default_backoff().boxed();
    }
    let namespaces: Vec<String> = apis
        .iter()
        .map(|(ns, _)| ns.clone().unwrap_or_default())
        .collect();
    let tagged = futures::stream::select_all(apis.into_iter().enumerate().map(|(i, (_, api))| {
        watcher(api, config.clone())
            .default_backoff()
            .map(move |e| (i, e))
            .boxed()
    }));
    merge_tagged(tagged.boxed(), namespaces, reader)
}

/// Merges the events of watch `i` over `namespaces[i]`, tagged with `i`.
fn merge_tagged<K>(
    tagged: BoxStream<'static, (usize, Result<Event<K>, watcher::Error>)>,
    namespaces: Vec<String>,
    reader: Store<K>,
) -> Events<K>
where
    K: Resource + Clone + Send + Sync + 'static,
    K::DynamicType: Eq + Hash + Clone + Send + Sync,
{
    let state = Merge {
        inner: tagged,
        reader,
        seen: HashMap::new(),
        listed: HashSet::new(),
        namespaces,
        synced: false,
        queue: VecDeque::new(),
    };
    futures::stream::unfold(state, |mut st| async move {
        let next = st.next().await?;
        Some((next, st))
    })
    .boxed()
}

enum Pending<K> {
    Event(Event<K>),
    /// Every namespace has been listed once: republish the store as one initial list, which marks
    /// the store ready for its readers. Taken when it is reached, after the events before it
    /// have been applied.
    Synced,
}

struct Merge<K: Resource + 'static>
where
    K::DynamicType: Eq + Hash + Clone,
{
    inner: BoxStream<'static, (usize, Result<Event<K>, watcher::Error>)>,
    reader: Store<K>,
    /// Per watch being (re)listed: the names listed so far.
    seen: HashMap<usize, HashSet<String>>,
    /// Watches listed at least once.
    listed: HashSet<usize>,
    /// The namespace of each watch.
    namespaces: Vec<String>,
    synced: bool,
    queue: VecDeque<Pending<K>>,
}

impl<K> Merge<K>
where
    K: Resource + Clone + Send + Sync + 'static,
    K::DynamicType: Eq + Hash + Clone,
{
    async fn next(&mut self) -> Option<Result<Event<K>, watcher::Error>> {
        loop {
            match self.queue.pop_front() {
                Some(Pending::Event(e)) => return Some(Ok(e)),
                Some(Pending::Synced) => {
                    let objects = self.reader.state();
                    self.queue.push_front(Pending::Event(Event::InitDone));
                    for o in objects.into_iter().rev() {
                        self.queue
                            .push_front(Pending::Event(Event::InitApply((*o).clone())));
                    }
                    return Some(Ok(Event::Init));
                }
                None => {}
            }
            let (i, event) = self.inner.next().await?;
            match event {
                Err(e) => return Some(Err(e)),
                Ok(Event::Init) => {
                    self.seen.insert(i, HashSet::new());
                }
                Ok(Event::InitApply(o)) => {
                    self.seen.entry(i).or_default().insert(o.name_any());
                    self.queue.push_back(Pending::Event(Event::Apply(o)));
                }
                Ok(Event::InitDone) => self.listed_once_more(i),
                Ok(e @ (Event::Apply(_) | Event::Delete(_))) => {
                    self.queue.push_back(Pending::Event(e))
                }
            }
        }
    }

    /// Watch `i` finished a (re)list: what it had before and did not list again is gone.
    fn listed_once_more(&mut self, i: usize) {
        let seen = self.seen.remove(&i).unwrap_or_default();
        let ns = self.namespaces[i].as_str();
        for gone in self
            .reader
            .state()
            .into_iter()
            .filter(|o| o.namespace().as_deref() == Some(ns) && !seen.contains(&o.name_any()))
        {
            self.queue
                .push_back(Pending::Event(Event::Delete((*gone).clone())));
        }
        self.listed.insert(i);
        if !self.synced && self.listed.len() == self.namespaces.len() {
            self.synced = true;
            self.queue.push_back(Pending::Synced);
        }
    }
}

/// Whether the API server serves the kind of `api` (its CRD is installed). A kind added by an
/// upgrade whose CRDs were not applied yet is "not served", never an error that stops the
/// process: its built-in defaults apply until it is.
pub async fn is_served<K>(api: &Api<K>) -> Result<bool, kube::Error>
where
    K: kube::Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
{
    match api
        .list_metadata(&kube::api::ListParams::default().limit(1))
        .await
    {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use futures::FutureExt as _;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::ObjectMeta;

    fn cm(ns: &str, name: &str) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                namespace: Some(ns.into()),
                name: Some(name.into()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn contents(store: &Store<ConfigMap>) -> Vec<String> {
        let mut v: Vec<String> = store
            .state()
            .iter()
            .map(|o| format!("{}/{}", o.namespace().unwrap(), o.name_any()))
            .collect();
        v.sort();
        v
    }

    #[tokio::test]
    async fn several_namespaces_feed_one_store_like_one_watch() {
        let (tx, rx) = futures::channel::mpsc::unbounded();
        let (reader, writer) = reflector::store::<ConfigMap>();
        let merged = merge_tagged(
            rx.map(|(i, e)| (i, Ok(e))).boxed(),
            vec!["a".into(), "b".into()],
            reader.clone(),
        );
        let mut out = reflector::reflector(writer, merged).boxed();
        let send = |i: usize, e: Event<ConfigMap>| tx.unbounded_send((i, e)).unwrap();
        // Both namespaces list, interleaved; the store is ready only when both are listed.
        send(0, Event::Init);
        send(0, Event::InitApply(cm("a", "x")));
        send(1, Event::Init);
        send(0, Event::InitDone);
        send(1, Event::InitApply(cm("b", "x")));
        send(1, Event::InitDone);
        let mut kinds = Vec::new();
        while kinds.last() != Some(&"InitDone") {
            let kind = match out.next().await.unwrap().unwrap() {
                Event::Apply(_) => "Apply",
                Event::Delete(_) => "Delete",
                Event::Init => "Init",
                Event::InitApply(_) => "InitApply",
                Event::InitDone => "InitDone",
            };
            if kind == "Apply" {
                assert!(
                    reader.wait_until_ready().now_or_never().is_none(),
                    "ready too early"
                );
            }
            kinds.push(kind);
        }
        assert_eq!(
            kinds,
            [
                "Apply",
                "Apply",
                "Init",
                "InitApply",
                "InitApply",
                "InitDone"
            ]
        );
        assert!(reader.wait_until_ready().now_or_never().is_some());
        assert_eq!(contents(&reader), ["a/x", "b/x"]);

        // Changes pass through.
        send(0, Event::Apply(cm("a", "y")));
        send(1, Event::Delete(cm("b", "x")));
        send(1, Event::Apply(cm("b", "z")));
        for _ in 0..3 {
            out.next().await.unwrap().unwrap();
        }
        assert_eq!(contents(&reader), ["a/x", "a/y", "b/z"]);

        // Namespace a relists after a lost watch: what it no longer lists is deleted there, and
        // only there (b keeps an object of the same name).
        send(1, Event::Apply(cm("b", "x")));
        out.next().await.unwrap().unwrap();
        send(0, Event::Init);
        send(0, Event::InitApply(cm("a", "y")));
        send(0, Event::InitDone);
        // Apply a/y, then Delete a/x.
        for _ in 0..2 {
            out.next().await.unwrap().unwrap();
        }
        assert_eq!(contents(&reader), ["a/y", "b/x", "b/z"]);

        // A namespace that relists empty loses everything it had.
        send(1, Event::Init);
        send(1, Event::InitDone);
        for _ in 0..2 {
            out.next().await.unwrap().unwrap();
        }
        assert_eq!(contents(&reader), ["a/y"]);
    }
}
