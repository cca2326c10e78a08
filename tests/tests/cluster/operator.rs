//! The operator against the real control plane: key rotation, crash safety, leader election,
//! client credentials and the conditions a user reads when something is wrong.

use std::{
    collections::{BTreeMap, BTreeSet},
    future::Future,
    time::{Duration, Instant},
};

use crds::{KeyState, OidcClient, OidcScope, SigningKey, SigningKeyStatus, secret::verify_secret};
use k8s_openapi::{
    ByteString,
    api::{coordination::v1::Lease, core::v1::Secret},
    apimachinery::pkg::apis::meta::v1::Condition,
};
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams},
};
use kube_oidc_tests::{Operator, TestNamespace, control_plane};

pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn condition<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

fn ready_of(client: &OidcClient) -> Option<Condition> {
    let status = client.status.as_ref()?;
    condition(&status.conditions, "Ready")
        .filter(|c| c.observed_generation == client.metadata.generation)
        .cloned()
}

async fn wait_ready(
    api: &Api<OidcClient>,
    name: &str,
    status: &str,
    timeout: Duration,
) -> Condition {
    eventually(
        &format!("OidcClient {name} Ready={status}"),
        timeout,
        || async {
            let c = api.get_opt(name).await.ok()??;
            ready_of(&c).filter(|r| r.status == status)
        },
    )
    .await
}

fn yaml<T: serde::de::DeserializeOwned>(s: &str) -> T {
    serde_yaml::from_str(s).expect("test manifest")
}

async fn key_secrets(ns: &TestNamespace, key: &str) -> Vec<Secret> {
    ns.api::<Secret>()
        .list(&ListParams::default().labels(&format!("kubeoidc.dev/signing-key={key}")))
        .await
        .expect("list key secrets")
        .items
}

async fn key_status(ns: &TestNamespace, key: &str) -> SigningKeyStatus {
    ns.api::<SigningKey>()
        .get(key)
        .await
        .expect("get signing key")
        .status
        .unwrap_or_default()
}

fn states(s: &SigningKeyStatus) -> Vec<(String, KeyState)> {
    s.keys.iter().map(|k| (k.kid.clone(), k.state)).collect()
}

async fn create_key(ns: &TestNamespace, name: &str, body: &str) {
    let sk: SigningKey = yaml(&format!(
        "apiVersion: kubeoidc.dev/v1alpha1\nkind: SigningKey\nmetadata:\n  name: {name}\nspec:\n{body}"
    ));
    ns.api::<SigningKey>()
        .create(&PostParams::default(), &sk)
        .await
        .expect("create signing key");
}

async fn annotate<K>(api: &Api<K>, name: &str, annotations: &[(&str, &str)])
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let map: BTreeMap<&str, &str> = annotations.iter().copied().collect();
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"metadata": {"annotations": map}})),
    )
    .await
    .expect("annotate");
}

/// Status, observed every 100 ms, against the schedule interval 6 s, prepublish 2 s, retain 2 s.
#[tokio::test]
async fn signing_keys_rotate_on_schedule_and_on_request() {
    let cp = control_plane();
    let ns = cp.namespace("rotation").await;
    let _operator = Operator::start(cp, &ns.name, "a", &[]);
    create_key(
        &ns,
        "rot",
        "  algorithm: ES256\n  rotation: {interval: 6s, prepublish: 2s, retain: 2s}\n",
    )
    .await;

    let started = Instant::now();
    let mut first_seen: BTreeMap<(String, KeyState), Instant> = BTreeMap::new();
    let mut last_seen: BTreeMap<String, (KeyState, Instant)> = BTreeMap::new();
    let mut activated: Vec<String> = Vec::new();
    while started.elapsed() < Duration::from_secs(21) {
        let status = key_status(&ns, "rot").await;
        let now = Instant::now();
        let active: Vec<&String> = status
            .keys
            .iter()
            .filter(|k| k.state == KeyState::Active)
            .map(|k| &k.kid)
            .collect();
        if !activated.is_empty() {
            assert_eq!(
                active.len(),
                1,
                "exactly one Active key: {:?}",
                states(&status)
            );
        }
        for (kid, state) in states(&status) {
            first_seen.entry((kid.clone(), state)).or_insert(now);
            last_seen.insert(kid.clone(), (state, now));
            if state == KeyState::Active && !activated.contains(&kid) {
                activated.push(kid);
            }
        }
        // Status timestamps: every key after the first was published prepublish before it signed.
        for k in &status.keys {
            if k.state != KeyState::Next
                && activated.first() != Some(&k.kid)
                && let Some(a) = &k.activated_at
            {
                assert!(
                    a.0.duration_since(k.created_at.0) >= jiff::SignedDuration::from_secs(2),
                    "key {} signed less than prepublish after it was published",
                    k.kid
                );
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        activated.len() >= 3,
        "expected at least 3 Active keys in 21 s with a 6 s interval, saw {activated:?}"
    );
    for kid in &activated[1..] {
        let next = first_seen
            .get(&(kid.clone(), KeyState::Next))
            .unwrap_or_else(|| panic!("{kid} was never Next before Active"));
        let active = first_seen[&(kid.clone(), KeyState::Active)];
        assert!(
            active.duration_since(*next) >= Duration::from_millis(1500),
            "{kid} was Next for only {:?}",
            active.duration_since(*next)
        );
    }
    // Retired keys left within retain (2 s) plus a margin; the earliest ones are gone.
    let status = key_status(&ns, "rot").await;
    let present: BTreeSet<String> = status.keys.iter().map(|k| k.kid.clone()).collect();
    assert!(
        !present.contains(&activated[0]),
        "first key still published after 21 s"
    );
    for (kid, (state, seen)) in &last_seen {
        if !present.contains(kid) {
            assert_eq!(*state, KeyState::Retired, "{kid} vanished while {state:?}");
            let retired = first_seen[&(kid.clone(), KeyState::Retired)];
            assert!(
                seen.duration_since(retired) >= Duration::from_millis(1500),
                "{kid} removed {:?} after retirement",
                seen.duration_since(retired)
            );
        }
    }
    // Every Secret is a published key and vice versa.
    let secrets: BTreeSet<String> = key_secrets(&ns, "rot")
        .await
        .iter()
        .map(|s| s.name_any())
        .collect();
    let named: BTreeSet<String> = status.keys.iter().map(|k| k.secret_name.clone()).collect();
    assert_eq!(secrets, named);

    // Manual rotation with a 1 s prepublish.
    let before = status.active_kid.clone().expect("active kid");
    annotate(
        &ns.api::<SigningKey>(),
        "rot",
        &[
            ("kubeoidc.dev/rotate", "manual-1"),
            ("kubeoidc.dev/rotate-prepublish", "1s"),
        ],
    )
    .await;
    let after = eventually("a manual rotation", Duration::from_secs(8), || async {
        let s = key_status(&ns, "rot").await;
        (s.observed_rotate.as_deref() == Some("manual-1"))
            .then_some(())
            .and(s.active_kid.filter(|k| *k != before))
    })
    .await;
    let s = key_status(&ns, "rot").await;
    let k = s.keys.iter().find(|k| k.kid == after).expect("new key");
    assert!(
        k.activated_at
            .as_ref()
            .unwrap()
            .0
            .duration_since(k.created_at.0)
            >= jiff::SignedDuration::from_secs(1)
    );

    // Revoke the active key: gone from status and its Secret deleted, another key signs.
    let secret_of = s
        .keys
        .iter()
        .find(|k| k.kid == after)
        .unwrap()
        .secret_name
        .clone();
    annotate(
        &ns.api::<SigningKey>(),
        "rot",
        &[("kubeoidc.dev/revoke-kid", &after)],
    )
    .await;
    eventually(
        "the revoked key to disappear",
        Duration::from_secs(5),
        || async {
            let s = key_status(&ns, "rot").await;
            let gone = !s.keys.iter().any(|k| k.kid == after);
            let secret_gone = ns.api::<Secret>().get_opt(&secret_of).await.ok()?.is_none();
            (gone && secret_gone && s.active_kid.is_some()).then_some(())
        },
    )
    .await;
    ns.delete().await;
}

/// A tiny deterministic generator (the seed is printed so a failure can be replayed).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

/// Status, and the key Secrets that existed around the moment it was read: a Secret is created
/// before its status entry and deleted after it, so a key in this status had its Secret in the
/// list before or the list after.
async fn observe(ns: &TestNamespace, key: &str) -> (SigningKeyStatus, BTreeSet<String>) {
    let mut secrets: BTreeSet<String> = key_secrets(ns, key)
        .await
        .iter()
        .map(|s| s.name_any())
        .collect();
    let status = key_status(ns, key).await;
    secrets.extend(key_secrets(ns, key).await.iter().map(|s| s.name_any()));
    (status, secrets)
}

fn check_invariants(s: &SigningKeyStatus, secrets: &BTreeSet<String>, had_key: bool, when: &str) {
    let active = s
        .keys
        .iter()
        .filter(|k| k.state == KeyState::Active)
        .count();
    if had_key {
        assert_eq!(active, 1, "{when}: exactly one Active key: {:?}", states(s));
    }
    for k in &s.keys {
        assert!(
            secrets.contains(&k.secret_name),
            "{when}: key {} in status without its Secret {}",
            k.kid,
            k.secret_name
        );
    }
}

/// SIGKILL at random points during fast rotations, 20 times; after each kill and each restart
/// the invariants hold, and no orphan Secret survives a reconcile.
#[tokio::test]
async fn operator_killed_at_random_points_keeps_key_invariants() {
    let cp = control_plane();
    let ns = cp.namespace("sigkill").await;
    create_key(
        &ns,
        "crash",
        "  algorithm: ES256\n  rotation: {interval: 3s, prepublish: 1s, retain: 1s}\n",
    )
    .await;
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(7);
    eprintln!("sigkill test seed {seed}");
    let mut rng = Lcg(seed);
    let mut had_key = false;
    let mut seen_active: BTreeSet<String> = BTreeSet::new();
    for round in 0..20 {
        let mut op = // The same identity, as a restarted pod of a StatefulSet has: it resumes the lease at once
        // instead of waiting for it to expire, so the kills land during rotations.
        Operator::start(cp, &ns.name, "crash", &[]);
        let run_for = Duration::from_millis(150 + rng.next(1350));
        let until = Instant::now() + run_for;
        while Instant::now() < until {
            let (s, secrets) = observe(&ns, "crash").await;
            had_key |= !s.keys.is_empty();
            check_invariants(&s, &secrets, had_key, &format!("round {round} running"));
            seen_active.extend(s.active_kid.clone());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        op.kill();
        let (s, secrets) = observe(&ns, "crash").await;
        had_key |= !s.keys.is_empty();
        check_invariants(
            &s,
            &secrets,
            had_key,
            &format!("round {round} after SIGKILL"),
        );
        // Status never names a key that has no signing schedule behind it.
        for k in &s.keys {
            if k.state != KeyState::Next {
                assert!(k.activated_at.is_some(), "round {round}: {:?}", k);
            }
        }
    }
    // A last restart converges: no Secret without a status entry, exactly one Active key.
    let _op = Operator::start(cp, &ns.name, "crash", &[]);
    eventually(
        "orphan key Secrets to be deleted",
        Duration::from_secs(10),
        || async {
            let (s, secrets) = observe(&ns, "crash").await;
            let named: BTreeSet<String> = s.keys.iter().map(|k| k.secret_name.clone()).collect();
            (secrets == named && s.active_kid.is_some()).then_some(())
        },
    )
    .await;
    eprintln!("{} keys were Active during the kills", seen_active.len());
    assert!(
        seen_active.len() >= 4,
        "keys rotated during the test: {seen_active:?}"
    );
    ns.delete().await;
}

async fn lease_holder(ns: &TestNamespace) -> Option<String> {
    ns.api::<Lease>()
        .get_opt("kube-oidc-operator")
        .await
        .ok()??
        .spec?
        .holder_identity
}

fn web_client(name: &str, extra: &str) -> OidcClient {
    yaml(&format!(
        "apiVersion: kubeoidc.dev/v1alpha1\nkind: OidcClient\nmetadata:\n  name: {name}\nspec:\n  redirectUris: [\"https://{name}.example.com/cb\"]\n{extra}"
    ))
}

#[tokio::test]
async fn only_the_leader_writes_and_killing_it_hands_over() {
    let cp = control_plane();
    let ns = cp.namespace("leader").await;
    let mut a = Operator::start(cp, &ns.name, "leader-a", &[]);
    eventually("a to lead", Duration::from_secs(10), || async {
        (lease_holder(&ns).await.as_deref() == Some("leader-a")).then_some(())
    })
    .await;
    let b = Operator::start(cp, &ns.name, "leader-b", &[]);
    let clients = ns.api::<OidcClient>();
    clients
        .create(&PostParams::default(), &web_client("first", ""))
        .await
        .unwrap();
    wait_ready(&clients, "first", "True", Duration::from_secs(10)).await;
    // b is up (it answers /healthz) but has reconciled nothing.
    eventually("b to serve /healthz", Duration::from_secs(5), || async {
        b.get("/healthz").filter(|(code, _)| *code == 200)
    })
    .await;
    assert!(a.counter("kube_oidc_operator_reconciles_total") >= 1.0);
    assert_eq!(
        b.counter("kube_oidc_operator_reconciles_total"),
        0.0,
        "the standby reconciled"
    );
    assert_eq!(lease_holder(&ns).await.as_deref(), Some("leader-a"));

    a.kill();
    clients
        .create(&PostParams::default(), &web_client("second", ""))
        .await
        .unwrap();
    wait_ready(&clients, "second", "True", Duration::from_secs(15)).await;
    assert_eq!(lease_holder(&ns).await.as_deref(), Some("leader-b"));
    assert!(b.counter("kube_oidc_operator_reconciles_total") >= 1.0);
    ns.delete().await;
}

async fn secret_value(ns: &TestNamespace, name: &str) -> Option<String> {
    let s = ns.api::<Secret>().get_opt(name).await.ok()??;
    let v = s.data?.get("client-secret")?.0.clone();
    String::from_utf8(v).ok()
}

async fn client_status(api: &Api<OidcClient>, name: &str) -> crds::OidcClientStatus {
    api.get(name).await.unwrap().status.unwrap_or_default()
}

#[tokio::test]
async fn client_credentials_are_generated_once_rotated_with_overlap_and_collected() {
    let cp = control_plane();
    let ns = cp.namespace("creds").await;
    let mut op = Operator::start(cp, &ns.name, "a", &[]);
    let clients = ns.api::<OidcClient>();
    clients
        .create(&PostParams::default(), &web_client("web", ""))
        .await
        .unwrap();
    let ready = wait_ready(&clients, "web", "True", Duration::from_secs(10)).await;
    assert_eq!(ready.reason, "Accepted");

    let secret = ns.api::<Secret>().get("web-oidc").await.unwrap();
    let data = secret.data.clone().unwrap();
    assert_eq!(data["client-id"].0, format!("{}.web", ns.name).into_bytes());
    assert_eq!(data["issuer-url"].0, b"https://issuer.test".to_vec());
    let first = secret_value(&ns, "web-oidc").await.unwrap();
    assert!(first.len() >= 43, "256-bit secret");
    let status = client_status(&clients, "web").await;
    assert!(verify_secret(
        &first,
        status.secret_hash.as_deref().unwrap()
    ));
    assert_eq!(
        status.client_id.as_deref(),
        Some(format!("{}.web", ns.name).as_str())
    );

    // Stable across operator restarts.
    let stopped = op
        .terminate(cp)
        .unwrap_or_else(|e| panic!("operator did not exit cleanly on SIGTERM: {e}"));
    eprintln!("operator stopped {stopped:?} after SIGTERM");
    let _op2 = Operator::start(cp, &ns.name, "b", &[]);
    clients
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"displayName": "touched"}})),
        )
        .await
        .unwrap();
    wait_ready(&clients, "web", "True", Duration::from_secs(10)).await;
    assert_eq!(secret_value(&ns, "web-oidc").await.unwrap(), first);
    assert!(verify_secret(
        &first,
        client_status(&clients, "web")
            .await
            .secret_hash
            .as_deref()
            .unwrap()
    ));

    // Rotation keeps the previous secret valid for the grace period.
    annotate(
        &clients,
        "web",
        &[("kubeoidc.dev/rotate-secret", "2026-11-24")],
    )
    .await;
    let second = eventually("a rotated secret", Duration::from_secs(10), || async {
        secret_value(&ns, "web-oidc").await.filter(|v| *v != first)
    })
    .await;
    let status = eventually(
        "status for the rotated secret",
        Duration::from_secs(10),
        || async {
            let s = client_status(&clients, "web").await;
            s.secret_hash
                .as_deref()
                .is_some_and(|h| verify_secret(&second, h))
                .then_some(s)
        },
    )
    .await;
    let previous = status.previous_secret.expect("previous secret kept");
    assert!(verify_secret(&first, &previous.hash));
    assert!(previous.expires_at.0 > jiff::Timestamp::now() + jiff::SignedDuration::from_hours(23));

    // A secret edited by hand is noticed: its value becomes the client secret, and the one
    // before keeps working for the grace period.
    ns.api::<Secret>()
        .patch(
            "web-oidc",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"stringData": {"client-secret": "set-by-hand-0123456789abcdef0123456789"}})),
        )
        .await
        .unwrap();
    let status = eventually(
        "status for the edited secret",
        Duration::from_secs(10),
        || async {
            let s = client_status(&clients, "web").await;
            s.secret_hash
                .as_deref()
                .is_some_and(|h| verify_secret("set-by-hand-0123456789abcdef0123456789", h))
                .then_some(s)
        },
    )
    .await;
    assert!(verify_secret(
        &second,
        &status.previous_secret.unwrap().hash
    ));
    let second = "set-by-hand-0123456789abcdef0123456789".to_string();

    // A Secret deleted by hand is noticed and a new secret generated.
    ns.api::<Secret>()
        .delete("web-oidc", &DeleteParams::default())
        .await
        .unwrap();
    let third = eventually(
        "the Secret to be recreated",
        Duration::from_secs(10),
        || async { secret_value(&ns, "web-oidc").await },
    )
    .await;
    assert_ne!(third, second);
    eventually(
        "status for the recreated secret",
        Duration::from_secs(10),
        || async {
            let s = client_status(&clients, "web").await;
            s.secret_hash.filter(|h| verify_secret(&third, h))
        },
    )
    .await;

    // Deleting the client garbage-collects its Secret.
    clients
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    eventually(
        "the Secret to be garbage collected",
        Duration::from_secs(60),
        || async {
            ns.api::<Secret>()
                .get_opt("web-oidc")
                .await
                .ok()?
                .is_none()
                .then_some(())
        },
    )
    .await;
    ns.delete().await;
}

#[tokio::test]
async fn bad_client_inputs_end_in_actionable_conditions() {
    let cp = control_plane();
    let ns = cp.namespace("badclient").await;
    let _op = Operator::start(cp, &ns.name, "a", &[]);
    let clients = ns.api::<OidcClient>();

    // Unknown scope, then the OidcScope appears.
    clients
        .create(
            &PostParams::default(),
            &web_client("scoped", "  scopes: [openid, orders:read]\n"),
        )
        .await
        .unwrap();
    let c = wait_ready(&clients, "scoped", "False", Duration::from_secs(10)).await;
    assert_eq!(c.reason, "UnknownScope");
    assert!(
        c.message.contains("orders:read") && c.message.contains("create the OidcScope"),
        "{}",
        c.message
    );
    let scope: OidcScope = yaml(
        "apiVersion: kubeoidc.dev/v1alpha1\nkind: OidcScope\nmetadata:\n  name: orders-read\nspec:\n  name: orders:read\n  description: Read orders\n",
    );
    ns.api::<OidcScope>()
        .create(&PostParams::default(), &scope)
        .await
        .unwrap();
    wait_ready(&clients, "scoped", "True", Duration::from_secs(10)).await;

    // A grant type the provider does not serve: never Ready, and the condition names it.
    clients
        .create(
            &PostParams::default(),
            &web_client(
                "exchange",
                "  grantTypes: [authorization_code, urn:ietf:params:oauth:grant-type:token-exchange]\n",
            ),
        )
        .await
        .unwrap();
    let c = wait_ready(&clients, "exchange", "False", Duration::from_secs(10)).await;
    assert_eq!(c.reason, "UnsupportedGrantType");
    assert!(
        c.message
            .contains("urn:ietf:params:oauth:grant-type:token-exchange"),
        "{}",
        c.message
    );

    // clientId conflict: the later client waits, the earlier keeps working; the later takes
    // over when the earlier goes.
    clients
        .create(
            &PostParams::default(),
            &web_client("one", "  clientId: shared-id\n"),
        )
        .await
        .unwrap();
    wait_ready(&clients, "one", "True", Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(1100)).await; // distinct creation timestamps
    clients
        .create(
            &PostParams::default(),
            &web_client("two", "  clientId: shared-id\n"),
        )
        .await
        .unwrap();
    let c = wait_ready(&clients, "two", "False", Duration::from_secs(10)).await;
    assert_eq!(c.reason, "ClientIdConflict");
    assert!(
        c.message.contains(&format!("{}/one", ns.name)) && c.message.contains("spec.clientId"),
        "{}",
        c.message
    );
    assert_eq!(
        ready_of(&clients.get("one").await.unwrap()).unwrap().status,
        "True"
    );
    // The same outcome as an Event on the object, for `kubectl describe` and `kubectl events`.
    let event = eventually(
        "a ClientIdConflict Event",
        Duration::from_secs(10),
        || async {
            let list = ns
                .api::<k8s_openapi::api::events::v1::Event>()
                .list(&ListParams::default())
                .await
                .ok()?;
            list.items.into_iter().find(|e| {
                e.reason.as_deref() == Some("ClientIdConflict")
                    && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("two")
            })
        },
    )
    .await;
    assert_eq!(event.type_.as_deref(), Some("Warning"));
    assert!(event.note.unwrap_or_default().contains("spec.clientId"));
    clients
        .delete("one", &DeleteParams::default())
        .await
        .unwrap();
    wait_ready(&clients, "two", "True", Duration::from_secs(10)).await;

    // Bring your own Secret: used, never written.
    let byo = Secret {
        metadata: ObjectMeta {
            name: Some("byo".into()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(
            "client-secret".to_string(),
            ByteString(b"a-secret-from-elsewhere-0123456789".to_vec()),
        )])),
        ..Default::default()
    };
    let byo = ns
        .api::<Secret>()
        .create(&PostParams::default(), &byo)
        .await
        .unwrap();
    clients
        .create(
            &PostParams::default(),
            &web_client("own", "  secretName: byo\n"),
        )
        .await
        .unwrap();
    wait_ready(&clients, "own", "True", Duration::from_secs(10)).await;
    let st = client_status(&clients, "own").await;
    assert!(verify_secret(
        "a-secret-from-elsewhere-0123456789",
        st.secret_hash.as_deref().unwrap()
    ));
    let after = ns.api::<Secret>().get("byo").await.unwrap();
    assert_eq!(
        after.metadata.resource_version, byo.metadata.resource_version,
        "BYO Secret was written"
    );

    // Expected externally: wait with a clear condition, then use it once it appears.
    clients
        .create(
            &PostParams::default(),
            &web_client("ext", "  secretName: ext-secret\n  externalSecret: true\n"),
        )
        .await
        .unwrap();
    let c = wait_ready(&clients, "ext", "False", Duration::from_secs(10)).await;
    assert_eq!(c.reason, "SecretMissing");
    assert!(
        c.message.contains("ext-secret") && c.message.contains("client-secret"),
        "{}",
        c.message
    );
    assert!(
        ns.api::<Secret>()
            .get_opt("ext-secret")
            .await
            .unwrap()
            .is_none(),
        "generated an external secret"
    );
    let ext = Secret {
        metadata: ObjectMeta {
            name: Some("ext-secret".into()),
            ..Default::default()
        },
        string_data: Some(BTreeMap::from([(
            "client-secret".to_string(),
            "external-value".to_string(),
        )])),
        ..Default::default()
    };
    ns.api::<Secret>()
        .create(&PostParams::default(), &ext)
        .await
        .unwrap();
    wait_ready(&clients, "ext", "True", Duration::from_secs(10)).await;

    // A BYO Secret without the key.
    let empty = Secret {
        metadata: ObjectMeta {
            name: Some("empty".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    ns.api::<Secret>()
        .create(&PostParams::default(), &empty)
        .await
        .unwrap();
    clients
        .create(
            &PostParams::default(),
            &web_client("nokey", "  secretName: empty\n"),
        )
        .await
        .unwrap();
    let c = wait_ready(&clients, "nokey", "False", Duration::from_secs(10)).await;
    assert_eq!(c.reason, "SecretInvalid");
    assert!(c.message.contains("client-secret"), "{}", c.message);
    ns.delete().await;
}

#[tokio::test]
async fn lost_or_corrupted_key_secrets_are_rotated_out() {
    let cp = control_plane();
    let ns = cp.namespace("keyloss").await;
    let _op = Operator::start(cp, &ns.name, "a", &[]);
    create_key(&ns, "main", "  algorithm: ES256\n").await;
    let first = eventually("a first key", Duration::from_secs(10), || async {
        key_status(&ns, "main").await.active_kid
    })
    .await;

    // Replace the key Secret with garbage under the same name (Secrets are immutable, so that is
    // what a damaging edit looks like).
    let secrets = key_secrets(&ns, "main").await;
    let mut bad = secrets[0].clone();
    let name = bad.name_any();
    ns.api::<Secret>()
        .delete(&name, &DeleteParams::default())
        .await
        .unwrap();
    bad.metadata.resource_version = None;
    bad.metadata.uid = None;
    bad.metadata.creation_timestamp = None;
    bad.metadata.managed_fields = None;
    bad.data = Some(BTreeMap::from([(
        "private.pem".to_string(),
        ByteString(b"garbage".to_vec()),
    )]));
    // The delete may still be in flight.
    eventually(
        "the corrupted Secret to be created",
        Duration::from_secs(5),
        || async {
            ns.api::<Secret>()
                .create(&PostParams::default(), &bad)
                .await
                .ok()
        },
    )
    .await;
    let status = eventually(
        "the corrupted key to be replaced",
        Duration::from_secs(10),
        || async {
            let s = key_status(&ns, "main").await;
            (s.active_kid.as_ref().is_some_and(|k| *k != first)
                && !s.keys.iter().any(|k| k.kid == first))
            .then_some(s)
        },
    )
    .await;
    let degraded = condition(&status.conditions, "Degraded").expect("Degraded condition");
    assert_eq!(degraded.status, "True");
    assert!(
        degraded.reason == "KeyMaterialCorrupt" || degraded.reason == "KeyMaterialMissing",
        "{degraded:?}"
    );
    assert!(
        degraded.message.contains(&name) && degraded.message.contains(&first),
        "{}",
        degraded.message
    );
    let ready = condition(&status.conditions, "Ready").unwrap();
    assert_eq!(ready.status, "True");
    eventually(
        "the corrupted Secret to be deleted",
        Duration::from_secs(10),
        || async {
            ns.api::<Secret>()
                .get_opt(&name)
                .await
                .ok()?
                .is_none()
                .then_some(())
        },
    )
    .await;
    ns.delete().await;
}
