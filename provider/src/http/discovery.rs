//! Discovery, JWKS, readiness and metrics: documents rendered once per configuration change.

use axum::{
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};

use super::Shared;

pub async fn discovery(State(s): State<Shared>) -> Response {
    let view = s.view.load();
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "public, max-age=300"),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
        ],
        view.discovery.clone(),
    )
        .into_response()
}

pub async fn jwks(State(s): State<Shared>) -> Response {
    let view = s.view.load();
    (
        [
            (header::CONTENT_TYPE, "application/jwk-set+json".to_string()),
            (
                header::CACHE_CONTROL,
                format!("public, max-age={}", view.jwks_max_age),
            ),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*".to_string()),
        ],
        view.jwks.clone(),
    )
        .into_response()
}

pub async fn readyz(State(s): State<Shared>) -> Response {
    let ready = s.view.load().ready();
    let store = s.store.ping().await;
    s.metrics.ready.set(i64::from(ready && store.is_ok()));
    match (ready, store) {
        (true, Ok(())) => (StatusCode::OK, "ok").into_response(),
        (false, _) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not synced or no active signing key",
        )
            .into_response(),
        (_, Err(e)) => (StatusCode::SERVICE_UNAVAILABLE, format!("store: {e}")).into_response(),
    }
}

pub async fn metrics(State(s): State<Shared>) -> Response {
    let ready = s.view.load().ready() && s.store.ping().await.is_ok();
    s.metrics.ready.set(i64::from(ready));
    match s.metrics.encode() {
        Ok(body) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}
