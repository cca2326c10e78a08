//! Request objects (OpenID Connect Core §6, RFC 9101): the authorization request's parameters
//! as a JWT, passed by value (`request`) or by reference (`request_uri`, fetched only when the
//! client registered it). Unsigned (`alg: none`) or signed with one of the client's keys
//! (jwks / jwksUri); encrypted ones are refused.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use serde_json::{Map, Value};

use super::{Context, OAuthError, client_assertion, params::Params};

fn invalid_object(why: impl Into<String>) -> OAuthError {
    OAuthError::InvalidRequestObject(why.into())
}

/// The request's parameters with those of its request object, if it has one: the object's
/// values win (OpenID Connect Core §6.3.3). An error here goes back to the client once its
/// redirect URI is known.
pub async fn resolve(ctx: &Context<'_>, p: &Params) -> Result<Option<Params>, OAuthError> {
    let (object, by_reference) = match (p.get("request"), p.get("request_uri")) {
        (None, None) => return Ok(None),
        (Some(_), Some(_)) => {
            return Err(OAuthError::InvalidRequest(
                "send request or request_uri, not both".into(),
            ));
        }
        (Some(jwt), None) => (jwt.clone(), false),
        (None, Some(uri)) => (fetch(ctx, p, uri).await?, true),
    };
    let client_id = p.get("client_id").ok_or_else(|| {
        OAuthError::InvalidRequest("client_id is required beside a request object".into())
    })?;
    let claims = verify(ctx, client_id, object.trim()).await?;
    if claims
        .get("client_id")
        .is_some_and(|c| c.as_str() != Some(client_id.as_str()))
    {
        return Err(invalid_object("its client_id is not the request's"));
    }
    let mut merged = p.clone();
    merged.remove("request");
    merged.remove("request_uri");
    for (name, value) in claims {
        if matches!(
            name.as_str(),
            "iss" | "aud" | "exp" | "iat" | "nbf" | "jti" | "request" | "request_uri"
        ) {
            continue;
        }
        let value = match value {
            Value::String(s) => s,
            Value::Null => continue,
            // `claims` and numbers such as max_age, as their query form would carry them.
            other => other.to_string(),
        };
        merged.insert(name, value);
    }
    tracing::debug!(by_reference, "request object resolved");
    Ok(Some(merged))
}

/// The object at `request_uri`: one the client registered, fetched like its other documents.
async fn fetch(ctx: &Context<'_>, p: &Params, uri: &str) -> Result<String, OAuthError> {
    let invalid_uri = |why: String| OAuthError::InvalidRequestUri(why);
    let client = p
        .get("client_id")
        .and_then(|id| ctx.view.client(id))
        .ok_or_else(|| invalid_uri("request_uri needs a known client_id".into()))?;
    if !client.request_uris.iter().any(|r| r == uri) {
        return Err(invalid_uri(
            "request_uri is not one of the client's registered request_uris".into(),
        ));
    }
    let without_fragment = uri.split('#').next().unwrap_or_default();
    let body = ctx
        .settings
        .client_keys
        .get(
            "request_uri",
            without_fragment,
            "application/oauth-authz-req+jwt",
        )
        .await
        .map_err(|e| invalid_uri(format!("request_uri cannot be fetched: {e}")))?;
    String::from_utf8(body).map_err(|_| invalid_uri("request_uri is not a JWT".into()))
}

/// The object's claims: unsigned, or signed by the client with the algorithm it registered.
async fn verify(
    ctx: &Context<'_>,
    client_id: &str,
    jwt: &str,
) -> Result<Map<String, Value>, OAuthError> {
    let client = ctx
        .view
        .client(client_id)
        .ok_or_else(|| invalid_object("the client is not known"))?;
    let parts: Vec<&str> = jwt.split('.').collect();
    if parts.len() == 5 {
        return Err(invalid_object(
            "encrypted request objects are not supported",
        ));
    }
    if parts.len() != 3 {
        return Err(invalid_object("not a JWT"));
    }
    let header: Value = B64
        .decode(parts[0])
        .ok()
        .and_then(|h| serde_json::from_slice(&h).ok())
        .ok_or_else(|| invalid_object("its header is not JSON"))?;
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if let Some(expected) = &client.request_object_signing_alg
        && expected != alg
    {
        return Err(invalid_object(format!(
            "this client signs request objects with {expected}, not {alg}"
        )));
    }
    let claims: Map<String, Value> = if alg == "none" {
        if !parts[2].is_empty() {
            return Err(invalid_object(
                "an unsigned request object has no signature",
            ));
        }
        B64.decode(parts[1])
            .ok()
            .and_then(|c| serde_json::from_slice(&c).ok())
            .ok_or_else(|| invalid_object("its payload is not a JSON object"))?
    } else {
        let header = jsonwebtoken::decode_header(jwt).map_err(|e| invalid_object(e.to_string()))?;
        let keys = client_assertion::client_keys(ctx, &client, header.kid.as_deref())
            .await?
            .ok_or_else(|| invalid_object("the client has no keys (jwks or jwks_uri)"))?;
        let key = keys.verifying(&header).map_err(invalid_object)?;
        let mut validation = jsonwebtoken::Validation::new(header.alg);
        validation.algorithms = vec![header.alg];
        validation.required_spec_claims.clear();
        validation.validate_aud = false;
        validation.validate_exp = true;
        validation.leeway = 30;
        jsonwebtoken::decode::<Map<String, Value>>(jwt, key, &validation)
            .map_err(|e| invalid_object(e.to_string()))?
            .claims
    };
    // RFC 9101 §6.3: when present, iss is the client and aud this provider.
    if claims
        .get("iss")
        .is_some_and(|i| i.as_str() != Some(client_id))
    {
        return Err(invalid_object("its iss is not the client"));
    }
    if let Some(aud) = claims.get("aud")
        && !super::claims::audience_contains(aud, &ctx.view.issuer)
    {
        return Err(invalid_object("its aud is not this provider"));
    }
    if claims
        .get("exp")
        .and_then(Value::as_u64)
        .is_some_and(|exp| exp + 30 < ctx.now)
    {
        return Err(invalid_object("it has expired"));
    }
    Ok(claims)
}
