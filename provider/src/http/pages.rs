//! Server-rendered pages: login, consent, device, logout, messages. Templates (minijinja,
//! HTML auto-escaping) ship in `provider/templates/` and may be replaced one by one from a
//! folder; texts are English message IDs translated from `provider/locales/<lang>.json` (and a
//! folder of more), in the language the browser asks for. The pages work without JavaScript.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{Arc, LazyLock},
};

use crate::{config::ClientConfig, protocol::connectors::Upstream};
use minijinja::{Environment, State, Value, context};
use serde::Serialize;

/// The page templates; a `--templates` folder may replace any of them.
const TEMPLATES: [(&str, &str); 8] = [
    ("base.html", include_str!("../../templates/base.html")),
    ("login.html", include_str!("../../templates/login.html")),
    ("consent.html", include_str!("../../templates/consent.html")),
    (
        "client_links.html",
        include_str!("../../templates/client_links.html"),
    ),
    ("device.html", include_str!("../../templates/device.html")),
    ("logout.html", include_str!("../../templates/logout.html")),
    ("message.html", include_str!("../../templates/message.html")),
    (
        "form_post.html",
        include_str!("../../templates/form_post.html"),
    ),
];

/// The languages shipped besides English, whose texts are the message IDs.
const LOCALES: [(&str, &str); 1] = [("de", include_str!("../../locales/de.json"))];

/// How the platform team brands the pages (flags, or the chart's branding ConfigMap).
#[derive(Clone, Debug, Default)]
pub struct Branding {
    /// The product name in the header and the title (default `kube-oidc`).
    pub name: Option<String>,
    /// An https (or `data:image/...`) URL of a logo shown in the header.
    pub logo_url: Option<String>,
    /// The colour of primary buttons and focus rings, `#rrggbb`.
    pub color: Option<String>,
    /// A CSS file added after the built-in styles.
    pub css: Option<PathBuf>,
    /// A folder of templates replacing the built-in ones of the same name.
    pub templates: Option<PathBuf>,
    /// A folder of `<lang>.json` catalogs adding languages or replacing shipped texts.
    pub locales: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BrandingError(String);

/// What every template sees as `brand`.
#[derive(Clone, Debug, Serialize)]
struct Brand {
    name: String,
    logo_url: Option<String>,
    color: String,
    /// Black or white, whichever reads better on `color` (WCAG contrast).
    on_color: &'static str,
}

type Catalogs = HashMap<String, HashMap<String, String>>;

/// The page renderer: templates, texts and the brand.
pub struct Ui {
    env: Environment<'static>,
    /// With replaced templates, the shipped ones: used when a replaced one fails at render
    /// time.
    builtin: Option<Environment<'static>>,
    brand: Value,
    /// The platform team's CSS, put in the pages' `<style>` as it is.
    css: Value,
    languages: Vec<String>,
    /// The CSP `img-src` the pages need (the logo's origin).
    pub img_src: String,
}

const DEFAULT_COLOR: &str = "#1f5fbf";

impl Ui {
    /// The shipped pages with `branding`; every problem of a file or value names it.
    pub fn load(branding: &Branding) -> Result<Self, BrandingError> {
        let err = |m: String| BrandingError(m);
        let mut catalogs: Catalogs = HashMap::new();
        for (lang, json) in LOCALES {
            let texts = serde_json::from_str(json)
                .map_err(|e| err(format!("shipped catalog {lang}.json: {e}")))?;
            catalogs.insert(lang.to_string(), texts);
        }
        if let Some(dir) = &branding.locales {
            for (path, lang) in files(dir, "json", "--locales")? {
                let text = read(&path, "--locales")?;
                let texts: HashMap<String, String> = serde_json::from_str(&text).map_err(|e| {
                    err(format!(
                        "--locales {}: not a JSON object of texts: {e}",
                        path.display()
                    ))
                })?;
                catalogs
                    .entry(lang.to_ascii_lowercase())
                    .or_default()
                    .extend(texts);
            }
        }
        let catalogs = Arc::new(catalogs);
        let shipped = || -> Result<Environment<'static>, BrandingError> {
            let mut env = environment(&catalogs);
            for (name, source) in TEMPLATES {
                env.add_template(name, source)
                    .map_err(|e| err(format!("shipped template {name}: {e}")))?;
            }
            Ok(env)
        };
        let mut env = shipped()?;
        let builtin = branding.templates.as_ref().map(|_| shipped()).transpose()?;
        if let Some(dir) = &branding.templates {
            for (path, stem) in files(dir, "html", "--templates")? {
                let name = format!("{stem}.html");
                if !TEMPLATES.iter().any(|(n, _)| *n == name) {
                    return Err(err(format!(
                        "--templates {}: not a page template; the templates are {}",
                        path.display(),
                        TEMPLATES.map(|(n, _)| n).join(", ")
                    )));
                }
                let source = read(&path, "--templates")?;
                env.add_template_owned(name, source)
                    .map_err(|e| err(format!("--templates {}: {e}", path.display())))?;
            }
        }
        let color = match &branding.color {
            Some(c) => parse_color(c)
                .map(|_| c.to_ascii_lowercase())
                .ok_or_else(|| err(format!("--brand-color {c}: not a colour such as #1f5fbf")))?,
            None => DEFAULT_COLOR.to_string(),
        };
        let css = match &branding.css {
            Some(path) => {
                let css = read(path, "--brand-css")?;
                // It is put inside the pages' <style>: it must not end it.
                if css.to_ascii_lowercase().contains("</") {
                    return Err(err(format!(
                        "--brand-css {}: must not contain \"</\"",
                        path.display()
                    )));
                }
                css
            }
            None => String::new(),
        };
        let img_src = match &branding.logo_url {
            Some(url) => {
                logo_source(url).map_err(|m| err(format!("--brand-logo-url {url}: {m}")))?
            }
            None => "'self'".to_string(),
        };
        let mut languages: Vec<String> = catalogs.keys().cloned().collect();
        languages.push("en".into());
        languages.sort();
        languages.dedup();
        Ok(Self {
            env,
            builtin,
            brand: Value::from(minijinja::value::Serde(Brand {
                name: branding
                    .name
                    .clone()
                    .filter(|n| !n.trim().is_empty())
                    .unwrap_or_else(|| "kube-oidc".into()),
                logo_url: branding.logo_url.clone(),
                on_color: on_color(&color),
                color,
            })),
            css: Value::from_safe_string(css),
            languages,
            img_src,
        })
    }

    /// The languages pages are shown in.
    pub fn languages(&self) -> &[String] {
        &self.languages
    }

    /// The language of `accept_language` (RFC 9110 §12.5.4) the pages have, else English.
    pub fn language(&self, accept_language: Option<&str>) -> String {
        let mut wanted: Vec<(f32, usize, String)> = accept_language
            .unwrap_or_default()
            .split(',')
            .enumerate()
            .filter_map(|(i, item)| {
                let mut parts = item.split(';');
                let tag = parts.next()?.trim().to_ascii_lowercase();
                let q = parts
                    .filter_map(|p| p.trim().strip_prefix("q="))
                    .find_map(|q| q.trim().parse::<f32>().ok())
                    .unwrap_or(1.0);
                (!tag.is_empty() && q > 0.0).then_some((q, i, tag))
            })
            .collect();
        wanted.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        for (_, _, tag) in wanted {
            let primary = tag.split('-').next().unwrap_or_default();
            for candidate in [tag.as_str(), primary] {
                if let Some(l) = self.languages.iter().find(|l| *l == candidate) {
                    return l.clone();
                }
            }
        }
        "en".into()
    }

    fn render(&self, name: &str, lang: &str, page: Value) -> String {
        let ctx = context! { lang => lang, brand => self.brand.clone(), brand_css => self.css.clone(), ..page };
        match self.env.get_template(name).and_then(|t| t.render(&ctx)) {
            Ok(html) => html,
            Err(e) => {
                tracing::error!(template = name, error = %e, "a page template failed; the shipped one is shown");
                self.builtin
                    .as_ref()
                    .unwrap_or(&self.env)
                    .get_template(name)
                    .and_then(|t| t.render(&ctx))
                    .unwrap_or_else(|e| {
                        tracing::error!(template = name, error = %e, "a shipped page template failed");
                        "<!doctype html><title>Error</title><p>This page cannot be shown.</p>"
                            .into()
                    })
            }
        }
    }
}

/// HTML-escapes text for element content and quoted attribute values (`&<>"'`; a `/` stays,
/// so URLs read as URLs).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn environment(catalogs: &Arc<Catalogs>) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_formatter(|out, state, value| {
        if value.is_safe() || *state.auto_escape() != minijinja::AutoEscape::Html {
            return minijinja::escape_formatter(out, state, value);
        }
        let text = if value.is_undefined() || value.is_none() {
            String::new()
        } else {
            value.to_string()
        };
        out.write_str(&escape(&text))
            .map_err(minijinja::Error::from)
    });
    let catalogs = catalogs.clone();
    // `t("English text")`: the text in the page's language, else the English.
    env.add_function("t", move |state: &State, msgid: String| -> String {
        let lang = state.lookup("lang");
        lang.as_ref()
            .and_then(|l| l.as_str())
            .and_then(|l| catalogs.get(l))
            .and_then(|texts| texts.get(&msgid))
            .cloned()
            .unwrap_or(msgid)
    });
    env
}

/// The `*.<ext>` files of `dir`, each with its stem.
fn files(dir: &Path, ext: &str, flag: &str) -> Result<Vec<(PathBuf, String)>, BrandingError> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| BrandingError(format!("{flag} {}: {e}", dir.display())))?;
    let mut out: Vec<(PathBuf, String)> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .filter_map(|p| {
            let stem = p.file_stem()?.to_str()?.to_string();
            Some((p, stem))
        })
        .collect();
    out.sort();
    Ok(out)
}

fn read(path: &Path, flag: &str) -> Result<String, BrandingError> {
    std::fs::read_to_string(path)
        .map_err(|e| BrandingError(format!("{flag} {}: {e}", path.display())))
}

fn parse_color(c: &str) -> Option<[u8; 3]> {
    let hex = c.strip_prefix('#')?;
    let digits: Vec<u8> = hex
        .chars()
        .map(|c| c.to_digit(16).and_then(|d| u8::try_from(d).ok()))
        .collect::<Option<_>>()?;
    match digits.as_slice() {
        [r, g, b] => Some([r * 17, g * 17, b * 17]),
        [r1, r2, g1, g2, b1, b2] => Some([r1 * 16 + r2, g1 * 16 + g2, b1 * 16 + b2]),
        _ => None,
    }
}

/// Relative luminance (WCAG 2.x).
fn luminance([r, g, b]: [u8; 3]) -> f64 {
    let channel = |c: u8| {
        let c = f64::from(c) / 255.0;
        if c <= 0.039_28 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)
}

/// The text colour with the better contrast on `color`.
fn on_color(color: &str) -> &'static str {
    let l = parse_color(color).map_or(0.0, luminance);
    // Contrast with white (1.05 / (l + 0.05)) against black ((l + 0.05) / 0.05).
    if 1.05 / (l + 0.05) >= (l + 0.05) / 0.05 {
        "#ffffff"
    } else {
        "#000000"
    }
}

/// The CSP `img-src` that lets the pages show the logo at `url`.
fn logo_source(url: &str) -> Result<String, &'static str> {
    if url.starts_with("data:image/") {
        return Ok("'self' data:".into());
    }
    let parsed = url::Url::parse(url).map_err(|_| "not a URL")?;
    if parsed.scheme() != "https" {
        return Err("must be an https URL (or a data:image/ URL)");
    }
    let origin = parsed.origin().ascii_serialization();
    Ok(format!("'self' {origin}"))
}

tokio::task_local! {
    /// The renderer and the Accept-Language of the request being answered: set once per request
    /// by the router, so that the many places that answer with a page need not carry them. The
    /// language is chosen only when a page is rendered (token requests never pay for it).
    static PAGE: (Arc<Ui>, Option<axum::http::HeaderValue>);
}

/// Runs `f` (a request's handling) with pages in the language `accept_language` asks for.
pub async fn localized<F: std::future::Future>(
    ui: Arc<Ui>,
    accept_language: Option<axum::http::HeaderValue>,
    f: F,
) -> F::Output {
    PAGE.scope((ui, accept_language), f).await
}

/// Pages rendered outside a request (unit tests): shipped templates, English.
static SHIPPED: LazyLock<Arc<Ui>> = LazyLock::new(|| {
    #[allow(clippy::expect_used)]
    Arc::new(Ui::load(&Branding::default()).expect("the shipped templates compile"))
});

fn render(name: &str, page: Value) -> String {
    PAGE.try_with(|(ui, accept)| {
        let lang = ui.language(accept.as_ref().and_then(|v| v.to_str().ok()));
        ui.render(name, &lang, page.clone())
    })
    .unwrap_or_else(|_| SHIPPED.render(name, "en", page))
}

/// The form_post response (OAuth 2.0 Form Post Response Mode): a form the browser posts to the
/// client. A script allowed by `nonce` submits it at once; without scripts, a button does.
pub fn form_post(action: &str, fields: &[(&str, &str)], nonce: &str) -> String {
    render(
        "form_post.html",
        context! { title => "Continue", action, fields => Value::from(minijinja::value::Serde(fields)), nonce },
    )
}

/// What the sign-in and consent pages show of the client: its name, logo and links.
fn client_face(client: &ClientConfig) -> Value {
    context! {
        name => &client.name,
        logo_uri => &client.logo_uri,
        policy_uri => &client.policy_uri,
        tos_uri => &client.tos_uri,
    }
}

/// What the sign-in page offers a client's people.
#[derive(Serialize, Clone, Debug, Default)]
pub struct SignInOptions {
    /// Buttons to OpenID Connect upstreams: (connector name, display name), by name.
    pub upstreams: Vec<(String, String)>,
    /// Directories the password form checks with: (connector name, display name), by name.
    pub directories: Vec<(String, String)>,
    /// The password form checks the local users.
    pub local: bool,
    /// The password form is shown (local users, or a directory).
    pub password_form: bool,
    /// The directory chosen beforehand (the request's `connector`).
    pub selected: Option<String>,
}

impl SignInOptions {
    /// The view's connectors the client offers (its `allowedConnectors`); `hint` pre-selects one.
    pub fn of(view: &crate::config::View, client: &ClientConfig, hint: Option<&str>) -> Self {
        let mut o = Self::default();
        for (name, u) in &view.upstreams {
            if !client.offers_connector(name) {
                continue;
            }
            let entry = (name.clone(), u.spec().display_name.clone());
            match u.as_ref() {
                Upstream::Oidc(_) => o.upstreams.push(entry),
                Upstream::Ldap(_) => o.directories.push(entry),
            }
        }
        o.upstreams.sort();
        o.directories.sort();
        o.local = view.local_sign_in && client.offers_connector(crate::config::LOCAL_CONNECTOR);
        o.password_form = o.local || !o.directories.is_empty();
        o.selected = hint
            .filter(|h| o.directories.iter().any(|(n, _)| n == h))
            .map(String::from);
        o
    }

    /// The upstream to send the browser to without showing the page: the one asked for (the
    /// request's `connector`), or the only way to sign in.
    pub fn straight_to(&self, hint: Option<&str>) -> Option<&str> {
        if let Some(h) = hint
            && let Some((name, _)) = self.upstreams.iter().find(|(n, _)| n == h)
        {
            return Some(name);
        }
        match (self.upstreams.as_slice(), self.password_form) {
            ([(name, _)], false) => Some(name),
            _ => None,
        }
    }
}

/// The Content-Security-Policy of the pages (the logo's origin in `img-src`).
pub fn csp(img_src: &str) -> String {
    format!(
        "default-src 'none'; style-src 'unsafe-inline'; img-src {img_src}; frame-ancestors 'none'; base-uri 'none'"
    )
}

/// The Content-Security-Policy of a page that shows `client`'s logo: the pages' own with the
/// logo's origin allowed too. `None` when it has no logo (the pages' own applies).
pub fn client_page_csp(client: &ClientConfig) -> Option<axum::http::HeaderValue> {
    let origin = logo_source(client.logo_uri.as_deref()?).ok()?;
    let own = PAGE
        .try_with(|(ui, _)| ui.img_src.clone())
        .unwrap_or_else(|_| "'self'".into());
    axum::http::HeaderValue::from_str(&csp(&format!(
        "{own} {}",
        origin.trim_start_matches("'self' ")
    )))
    .ok()
}

pub fn login(
    client: &ClientConfig,
    options: &SignInOptions,
    request: &str,
    csrf: &str,
    username: &str,
    error: Option<&str>,
) -> String {
    render(
        "login.html",
        context! { title => "Sign in", client => client_face(client), client_name => &client.name, request, csrf, username, error, options => Value::from(minijinja::value::Serde(options)) },
    )
}

/// The page where a user enters the code a device shows (RFC 8628 §3.3).
pub fn device_entry(user_code: &str, error: Option<&str>) -> String {
    render(
        "device.html",
        context! { title => "Sign in a device", user_code, error },
    )
}

/// The consent page. `account` names who is signed in (with a way to switch); a device
/// sign-in names the device's code: a link with someone else's code is phishing.
pub fn consent(
    client: &ClientConfig,
    account: &str,
    scopes: &[(String, String)],
    device_code: Option<&str>,
    request: &str,
    csrf: &str,
) -> String {
    let scopes: Vec<String> = scopes
        .iter()
        .map(|(name, description)| {
            if description.is_empty() {
                name.clone()
            } else {
                description.clone()
            }
        })
        .collect();
    render(
        "consent.html",
        context! { title => "Allow access", client => client_face(client), client_name => &client.name, account, scopes, device_code, request, csrf },
    )
}

pub fn logout_confirm(request: &str, csrf: &str) -> String {
    render(
        "logout.html",
        context! { title => "Sign out", request, csrf },
    )
}

/// A page with a title and a message (errors, results).
pub fn error(title: &str, message: &str) -> String {
    render("message.html", context! { title, message })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn everything_shown_is_escaped() {
        let named = |extra: &str| {
            ClientConfig::from_resource(
                &crate::test_support::client(&format!(
                    "  clientId: app\n  displayName: \"<script>x</script>\"\n{extra}"
                )),
                vec![],
            )
        };
        let app = named("");
        let local = SignInOptions {
            password_form: true,
            local: true,
            ..SignInOptions::default()
        };
        let html = login(&app, &local, "r\"><x", "c'", "a&b", Some("<b>"));
        assert!(!html.contains("<script>x"));
        assert!(html.contains("&lt;script&gt;x&lt;/script&gt;"), "{html}");
        assert!(html.contains("r&quot;&gt;&lt;x"));
        assert!(html.contains("c&#39;"), "{html}");
        assert!(html.contains("a&amp;b"));
        assert!(!html.contains("<b>"));
        assert!(
            !html.contains(r#"class="client-logo""#) && !html.contains(r#"class="client-links""#)
        );
        let html = consent(
            &app,
            "<i>alice</i>",
            &[("s".into(), "<img src=x>".into())],
            Some("<b>"),
            "r",
            "c",
        );
        assert!(!html.contains("<img") && !html.contains("<b>") && !html.contains("<i>"));
        // Allow is the first button: what submitting the page by default, or a scripted
        // browser pressing "the submit button", does; switching accounts is never that.
        let first = |v: &str| html.find(&format!("value=\"{v}\"")).unwrap();
        assert!(first("approve") < first("deny") && first("deny") < first("switch"));
    }

    /// A client's logo, privacy policy and terms (OpenID Connect Registration §2) on its pages,
    /// escaped; the page's CSP lets the logo's origin, and only it, in.
    #[test]
    fn a_clients_logo_and_links_are_shown_and_allowed_by_the_csp() {
        let app = ClientConfig::from_resource(
            &crate::test_support::client(
                "  clientId: app\n  displayName: Orders\n  logoUri: \"https://cdn.example/logo.png?a=1&b=\\\"2\"\n  policyUri: https://orders.example/privacy\n  tosUri: https://orders.example/terms\n",
            ),
            vec![],
        );
        for html in [
            login(
                &app,
                &SignInOptions {
                    password_form: true,
                    local: true,
                    ..SignInOptions::default()
                },
                "r",
                "c",
                "",
                None,
            ),
            consent(&app, "alice", &[], None, "r", "c"),
        ] {
            assert!(
                html.contains(r#"<img class="client-logo" src="https://cdn.example/logo.png?a=1&amp;b=&quot;2" alt="Orders">"#),
                "{html}"
            );
            assert!(
                html.contains(r#"href="https://orders.example/privacy""#),
                "{html}"
            );
            assert!(
                html.contains(r#"href="https://orders.example/terms""#),
                "{html}"
            );
        }
        let csp = client_page_csp(&app).unwrap();
        let csp = csp.to_str().unwrap();
        assert!(csp.contains("img-src 'self' https://cdn.example;"), "{csp}");
        assert!(csp.starts_with("default-src 'none'"), "{csp}");
        let plain =
            ClientConfig::from_resource(&crate::test_support::client("  clientId: p\n"), vec![]);
        assert!(client_page_csp(&plain).is_none());
    }

    #[test]
    fn the_language_follows_accept_language() {
        let ui = Ui::load(&Branding::default()).unwrap();
        assert_eq!(ui.language(None), "en");
        assert_eq!(ui.language(Some("de-DE,de;q=0.9,en;q=0.8")), "de");
        assert_eq!(ui.language(Some("fr-FR, en;q=0.5, de;q=0.7")), "de");
        assert_eq!(ui.language(Some("de;q=0, fr")), "en");
        assert_eq!(ui.language(Some("*")), "en");
    }

    #[test]
    fn branding_is_checked_and_shown() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("login.html"), "{% extends \"base.html\" %}{% block content %}<h1>Custom {{ t(\"Sign in\") }}</h1>{% endblock %}").unwrap();
        std::fs::write(dir.path().join("fr.json"), r#"{"Sign in": "Se connecter"}"#).unwrap();
        let css = dir.path().join("brand.css");
        std::fs::write(&css, "h1{color:#123456}").unwrap();
        let branding = Branding {
            name: Some("Example Corp".into()),
            logo_url: Some("https://cdn.example.com/logo.svg".into()),
            color: Some("#ffcc00".into()),
            css: Some(css.clone()),
            templates: Some(dir.path().to_path_buf()),
            locales: Some(dir.path().to_path_buf()),
        };
        let ui = Ui::load(&branding).unwrap();
        assert_eq!(ui.img_src, "'self' https://cdn.example.com");
        let html = ui.render("login.html", "fr", context! { title => "Sign in" });
        assert!(html.contains("<h1>Custom Se connecter</h1>"), "{html}");
        assert!(html.contains("Example Corp") && html.contains("h1{color:#123456}"));
        // Dark text on a light brand colour.
        assert!(html.contains("--on-brand:#000000"), "{html}");

        for (bad, expected) in [
            (
                Branding {
                    color: Some("red".into()),
                    ..Branding::default()
                },
                "--brand-color red",
            ),
            (
                Branding {
                    logo_url: Some("http://x/logo.png".into()),
                    ..Branding::default()
                },
                "https",
            ),
        ] {
            let e = Ui::load(&bad).err().unwrap().to_string();
            assert!(e.contains(expected), "{e}");
        }
        std::fs::write(&css, "</style><script>").unwrap();
        let e = Ui::load(&Branding {
            css: Some(css),
            ..Branding::default()
        })
        .err()
        .unwrap()
        .to_string();
        assert!(e.contains("--brand-css"), "{e}");
        std::fs::write(dir.path().join("other.html"), "x").unwrap();
        let e = Ui::load(&Branding {
            templates: Some(dir.path().to_path_buf()),
            ..Branding::default()
        })
        .err()
        .unwrap()
        .to_string();
        assert!(e.contains("other.html: not a page template"), "{e}");
    }
}
