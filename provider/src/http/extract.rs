//! What handlers read from a request: the peer address, cookies, credentials, form parameters.

use std::{net::SocketAddr, time::Duration};

use axum::{
    body::Bytes,
    extract::{ConnectInfo, FromRequest, FromRequestParts, Request},
    http::{HeaderMap, HeaderValue, Method, header, request::Parts},
    response::{IntoResponse, Response},
};

use super::respond::Redirect;
use crate::{
    config::View,
    protocol::{
        interaction::Answer,
        params::{Params, parse_params},
    },
};

/// The parameters of an endpoint served by GET (query) and POST (form body), and the redirect
/// that answers the method.
pub struct Parameters {
    pub raw: Bytes,
    pub how: Redirect,
}

impl<S: Send + Sync> FromRequest<S> for Parameters {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if req.method() == Method::POST {
            let raw = Bytes::from_request(req, state)
                .await
                .map_err(IntoResponse::into_response)?;
            Ok(Self {
                raw,
                how: Redirect::SeeOther,
            })
        } else {
            let query = req.uri().query().unwrap_or_default().as_bytes().to_vec();
            Ok(Self {
                raw: Bytes::from(query),
                how: Redirect::Found,
            })
        }
    }
}

/// The session cookie.
pub const SESSION_COOKIE: &str = "kube_oidc_session";
/// The cookie that binds a pending interaction to the browser that started it.
pub const BINDING_COOKIE: &str = "kube_oidc_req";

/// An address range (`10.0.0.0/8`, `fd00::/8`, or one address).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    addr: std::net::IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(text: &str) -> Result<Self, String> {
        let (addr, prefix) = text.split_once('/').unwrap_or((text, ""));
        let addr: std::net::IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("{text}: not an address range such as 10.0.0.0/8"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = if prefix.is_empty() {
            max
        } else {
            prefix
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{text}: the prefix length must be 0 to {max}"))?
        };
        Ok(Self { addr, prefix })
    }

    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        let bits = |ip: std::net::IpAddr| match ip {
            std::net::IpAddr::V4(a) => (u128::from(u32::from(a)), 32u32),
            std::net::IpAddr::V6(a) => (u128::from(a), 128u32),
        };
        let ((net, len), (candidate, clen)) = (bits(self.addr), bits(ip));
        if len != clen {
            return false;
        }
        let shift = len - u32::from(self.prefix);
        shift >= len || (net >> shift) == (candidate >> shift)
    }
}

/// The proxies (an ingress controller, a load balancer) whose `X-Forwarded-For` is believed:
/// a request extension the router sets.
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies(pub std::sync::Arc<Vec<Cidr>>);

/// The client's address: the peer, or, when the peer is a trusted proxy, the nearest address in
/// `X-Forwarded-For` that is not one (an address a client wrote itself further left is never
/// believed).
pub struct ClientIp(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let Some(peer) = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
        else {
            return Ok(ClientIp("unknown".into()));
        };
        let trusted = parts
            .extensions
            .get::<TrustedProxies>()
            .cloned()
            .unwrap_or_default();
        let is_trusted = |ip: std::net::IpAddr| trusted.0.iter().any(|c| c.contains(ip));
        if !is_trusted(peer) {
            return Ok(ClientIp(peer.to_string()));
        }
        let forwarded: Vec<std::net::IpAddr> = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|a| a.trim().parse().ok())
            .collect();
        let client = forwarded
            .iter()
            .rev()
            .find(|ip| !is_trusted(**ip))
            .copied()
            .unwrap_or(peer);
        Ok(ClientIp(client.to_string()))
    }
}

/// The value of cookie `name`.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// A `Set-Cookie` for the issuer's path: HttpOnly, SameSite=Lax, Secure under https.
pub fn set_cookie(view: &View, name: &str, value: &str, max_age: Duration) -> HeaderValue {
    let secure = if view.issuer.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    let path = url::Url::parse(&view.issuer)
        .map(|u| u.path().trim_end_matches('/').to_string())
        .unwrap_or_default();
    let path = if path.is_empty() {
        "/".to_string()
    } else {
        path
    };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path={path}; Max-Age={}; HttpOnly; SameSite=Lax{secure}",
        max_age.as_secs()
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The value of an `Authorization` header with `scheme` (case-insensitive first letter).
fn authorization<'h>(headers: &'h HeaderMap, scheme: &str) -> Option<&'h str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let lower = scheme.to_ascii_lowercase();
    value
        .strip_prefix(&format!("{scheme} "))
        .or_else(|| value.strip_prefix(&format!("{lower} ")))
}

/// The credentials of `Authorization: Basic`, still base64.
pub fn basic(headers: &HeaderMap) -> Option<&str> {
    authorization(headers, "Basic")
}

/// The token of `Authorization: Bearer`.
pub fn bearer(headers: &HeaderMap) -> Option<String> {
    authorization(headers, "Bearer").map(|t| t.trim().to_string())
}

/// A form that answers a pending interaction, with the browser's binding cookie.
pub struct AnswerForm {
    pub form: Params,
    binding_cookie: Option<String>,
}

impl AnswerForm {
    /// The form in `body`, or `None` when it is malformed.
    pub fn parse(body: &[u8], headers: &HeaderMap) -> Option<Self> {
        Some(Self {
            form: parse_params(body).ok()?,
            binding_cookie: cookie(headers, BINDING_COOKIE),
        })
    }

    /// The form field `name`.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.form.get(name).map(String::as_str)
    }

    /// What the protocol checks the answer by.
    pub fn answer(&self) -> Answer<'_> {
        Answer {
            id: self.field("request"),
            csrf: self.field("csrf"),
            binding_cookie: self.binding_cookie.as_deref(),
        }
    }
}

#[cfg(test)]
mod client_ip_tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    async fn client_ip(peer: &str, forwarded: Option<&str>, trusted: &[&str]) -> String {
        let mut req = axum::http::Request::builder();
        if let Some(f) = forwarded {
            req = req.header("x-forwarded-for", f);
        }
        let (mut parts, ()) = req.body(()).unwrap().into_parts();
        parts
            .extensions
            .insert(ConnectInfo(SocketAddr::new(peer.parse().unwrap(), 40000)));
        parts.extensions.insert(TrustedProxies(std::sync::Arc::new(
            trusted.iter().map(|c| Cidr::parse(c).unwrap()).collect(),
        )));
        ClientIp::from_request_parts(&mut parts, &())
            .await
            .unwrap()
            .0
    }

    /// The attack: a client writes X-Forwarded-For itself to be throttled as someone else, or
    /// to escape its own counter. Only what trusted proxies add is believed.
    #[tokio::test]
    async fn forwarded_addresses_are_believed_only_from_trusted_proxies() {
        let proxies = ["10.0.0.0/8", "fd00::/8"];
        assert_eq!(
            client_ip("10.0.0.5", Some("1.2.3.4, 10.0.0.7"), &proxies).await,
            "1.2.3.4"
        );
        assert_eq!(
            client_ip("10.0.0.5", Some("9.9.9.9, 1.2.3.4"), &proxies).await,
            "1.2.3.4",
            "a spoofed leftmost entry is not believed"
        );
        assert_eq!(
            client_ip("5.5.5.5", Some("1.1.1.1"), &proxies).await,
            "5.5.5.5"
        );
        assert_eq!(
            client_ip("10.0.0.5", Some("1.1.1.1"), &[]).await,
            "10.0.0.5"
        );
        assert_eq!(client_ip("10.0.0.5", None, &proxies).await, "10.0.0.5");
        assert_eq!(
            client_ip("fd00::1", Some("2001:db8::9"), &proxies).await,
            "2001:db8::9"
        );
        assert!(Cidr::parse("10.0.0.0/33").is_err() && Cidr::parse("nope").is_err());
        assert!(
            Cidr::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        assert!(
            !Cidr::parse("10.0.0.0/8")
                .unwrap()
                .contains("11.0.0.1".parse().unwrap())
        );
        assert!(
            !Cidr::parse("::/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
    }
}
