//! Server-rendered pages: login, consent and errors. Everything shown is escaped; the pages
//! work without JavaScript.

/// HTML-escapes text for element content and quoted attribute values.
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

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:26rem;margin:4rem auto;padding:0 1rem;color:#222}\
h1{font-size:1.4rem}label{display:block;margin:.8rem 0 .2rem}input[type=text],input[type=password]{width:100%;padding:.5rem;box-sizing:border-box}\
button{margin-top:1rem;padding:.5rem 1.2rem;margin-right:.5rem}.error{color:#a00}ul{padding-left:1.2rem}\
.notice{border-left:4px solid #b36b00;background:#fff6e5;padding:.6rem .8rem}.code{font-family:ui-monospace,monospace;letter-spacing:.1em}";

/// The form_post response (OAuth 2.0 Form Post Response Mode): a form the browser posts to the
/// client. A script allowed by `nonce` submits it at once; without scripts, a button does.
pub fn form_post(action: &str, fields: &[(&str, &str)], nonce: &str) -> String {
    let inputs: String = fields
        .iter()
        .map(|(k, v)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                escape(k),
                escape(v)
            )
        })
        .collect();
    page(
        "Continue",
        &format!(
            "<form method=\"post\" action=\"{}\">{inputs}<noscript><h1>Continue</h1><p>Go back to the application.</p><button type=\"submit\">Continue</button></noscript></form><script nonce=\"{}\">document.forms[0].submit()</script>",
            escape(action),
            escape(nonce)
        ),
    )
}

/// An error shown above a form, announced to screen readers.
fn alert(error: Option<&str>) -> String {
    error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e)))
        .unwrap_or_default()
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{}</title><style>{STYLE}</style></head><body>{body}</body></html>",
        escape(title)
    )
}

pub fn login(
    client_name: &str,
    request: &str,
    csrf: &str,
    username: &str,
    error: Option<&str>,
) -> String {
    let error = alert(error);
    page(
        "Sign in",
        &format!(
            "<h1>Sign in</h1><p>to continue to <strong>{}</strong></p>{error}\
<form method=\"post\" action=\"login\">\
<input type=\"hidden\" name=\"request\" value=\"{}\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
<label for=\"username\">Username</label><input type=\"text\" id=\"username\" name=\"username\" value=\"{}\" autocomplete=\"username\" required autofocus>\
<label for=\"password\">Password</label><input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"current-password\" required>\
<button type=\"submit\">Sign in</button></form>",
            escape(client_name),
            escape(request),
            escape(csrf),
            escape(username),
        ),
    )
}

/// The page where a user enters the code a device shows (RFC 8628 §3.3).
pub fn device_entry(user_code: &str, error: Option<&str>) -> String {
    let error = alert(error);
    page(
        "Sign in a device",
        &format!(
            "<h1>Sign in a device</h1><p>Enter the code your device shows.</p>{error}\
<form method=\"post\" action=\"device\">\
<label for=\"user_code\">Code</label><input type=\"text\" id=\"user_code\" name=\"user_code\" value=\"{}\" autocomplete=\"off\" autocapitalize=\"characters\" spellcheck=\"false\" required autofocus>\
<button type=\"submit\">Continue</button></form>",
            escape(user_code),
        ),
    )
}

pub fn consent(
    client_name: &str,
    scopes: &[(String, String)],
    device_code: Option<&str>,
    request: &str,
    csrf: &str,
) -> String {
    let items: String = scopes
        .iter()
        .map(|(name, description)| {
            let text = if description.is_empty() {
                name
            } else {
                description
            };
            format!("<li>{}</li>", escape(text))
        })
        .collect();
    // A device sign-in names the device's code: a link with someone else's code is phishing.
    let device = device_code.map_or_else(String::new, |code| {
        format!(
            "<p class=\"notice\">A device is signing in. Allow only if you started this sign-in and your device shows the code <strong class=\"code\">{}</strong>.</p>",
            escape(code)
        )
    });
    page(
        "Allow access",
        &format!(
            "<h1>Allow access</h1>{device}<p><strong>{}</strong> asks to:</p><ul>{items}</ul>\
<form method=\"post\" action=\"consent\">\
<input type=\"hidden\" name=\"request\" value=\"{}\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
<button type=\"submit\" name=\"decision\" value=\"approve\">Allow</button>\
<button type=\"submit\" name=\"decision\" value=\"deny\">Deny</button></form>",
            escape(client_name),
            escape(request),
            escape(csrf),
        ),
    )
}

pub fn logout_confirm(request: &str, csrf: &str) -> String {
    page(
        "Sign out",
        &format!(
            "<h1>Sign out?</h1><p>Do you want to sign out of every application that uses this account on this browser?</p>\
<form method=\"post\" action=\"end_session/confirm\">\
<input type=\"hidden\" name=\"request\" value=\"{}\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
<button type=\"submit\" name=\"decision\" value=\"logout\">Sign out</button>\
<button type=\"submit\" name=\"decision\" value=\"stay\">Stay signed in</button></form>",
            escape(request),
            escape(csrf),
        ),
    )
}

pub fn error(title: &str, message: &str) -> String {
    page(
        title,
        &format!("<h1>{}</h1><p>{}</p>", escape(title), escape(message)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everything_shown_is_escaped() {
        let html = login("<script>x</script>", "r\"><x", "c'", "a&b", Some("<b>"));
        assert!(!html.contains("<script>x"));
        assert!(html.contains("&lt;script&gt;x&lt;/script&gt;"));
        assert!(html.contains("r&quot;&gt;&lt;x"));
        assert!(html.contains("c&#39;"));
        assert!(html.contains("a&amp;b"));
        assert!(!html.contains("<b>"));
        let html = consent(
            "app",
            &[("s".into(), "<img src=x>".into())],
            Some("<b>"),
            "r",
            "c",
        );
        assert!(!html.contains("<img") && !html.contains("<b>"));
    }
}
