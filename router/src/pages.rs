//! The small HTML pages the router answers with when it cannot proxy a request.

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::Full;

use super::Error;

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
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

fn page(status: StatusCode, title: &str, body_html: &str) -> Response<Full<Bytes>> {
    let html = format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{t}</title>\
         <style>body{{font-family:sans-serif;margin:3em;color:#333}}code{{background:#eee;\
         padding:0 .2em}}</style></head>\n<body><h1>{t}</h1>\n<p>{body_html}</p></body></html>\n",
        t = escape(title),
    );
    let mut resp = Response::new(Full::new(Bytes::from(html)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// The page for a request the router could not proxy.
pub fn error_page(err: &Error) -> Response<Full<Bytes>> {
    match err {
        Error::NoHost => page(
            StatusCode::BAD_REQUEST,
            "Bad request",
            "The request has no Host header, so the router cannot tell which app it is for.",
        ),
        Error::UnknownHost { host } => page(
            StatusCode::NOT_FOUND,
            "Not found",
            &format!(
                "No app is served at {}. Check the app name, or add the domain with \
                 <code>paas domains:add</code>.",
                escape(host)
            ),
        ),
        Error::NoBackends { app } => page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Service unavailable",
            &format!(
                "{} has no running web process; check <code>paas ps</code>.",
                escape(app)
            ),
        ),
        Error::Timeout { app, after, .. } => page(
            StatusCode::GATEWAY_TIMEOUT,
            "Gateway timeout",
            &format!(
                "{} did not answer within {} s. Check <code>paas logs</code> for slow \
                 requests.",
                escape(app),
                after.as_secs_f64()
            ),
        ),
        Error::TooLarge { app, limit } => page(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Request too large",
            &format!(
                "The request body for {} is larger than the router's limit of {} bytes; \
                 send a smaller one.",
                escape(app),
                limit
            ),
        ),
        Error::Upstream { app, .. } | Error::BadRequest { app, .. } => page(
            StatusCode::BAD_GATEWAY,
            "Bad gateway",
            &format!(
                "{} did not answer; its web process may have crashed or be starting. Check \
                 <code>paas ps</code> and <code>paas logs</code>.",
                escape(app)
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_escape_names() {
        assert_eq!(
            escape("<a href='x'>&\""),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;"
        );
        let r = error_page(&Error::UnknownHost {
            host: "<script>".into(),
        });
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
    }
}
