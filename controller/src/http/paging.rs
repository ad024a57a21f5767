//! Paging for list endpoints: `?limit=N&after=KEY` (the key of the last item of the page
//! before: an app's name, a release's version, a build's or job's id). A page that may
//! have more answers with `Link: </v1/…?limit=N&after=KEY>; rel="next"` and
//! `Next-Range: KEY`; the last page has neither. Without `limit` every item is returned
//! (up to [`MAX_LIMIT`]).
//!
//! Every list is cut by the store (keyset queries asking for [`PageQuery::fetch`] rows,
//! one more than the page, then [`page_of`]): apps, releases, builds and jobs.

use axum::response::{IntoResponse, Response};
use axum::Json;
use http::{header, HeaderValue};
use serde::{Deserialize, Serialize};

use super::ApiError;

/// The most items one page holds (also the default).
pub const MAX_LIMIT: u32 = 1000;

/// `?limit=&after=`
#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
    pub limit: Option<u32>,
    pub after: Option<String>,
}

impl PageQuery {
    fn limit(&self) -> Result<usize, ApiError> {
        match self.limit {
            Some(0) => Err(ApiError::Validation(format!(
                "limit must be between 1 and {MAX_LIMIT}"
            ))),
            Some(n) => Ok(n.min(MAX_LIMIT) as usize),
            None => Ok(MAX_LIMIT as usize),
        }
    }

    /// How many rows to ask the store for: the page's size plus one, which tells whether
    /// another page follows.
    pub fn fetch(&self) -> Result<u32, ApiError> {
        Ok(self.limit()? as u32 + 1)
    }
}

/// Answers a page the store has cut: `items` holds up to [`PageQuery::fetch`] rows in the
/// list's order, starting after `q.after`; a row beyond the page means a next page.
pub fn page_of<T: Serialize>(
    mut items: Vec<T>,
    q: &PageQuery,
    path: &str,
    key: impl Fn(&T) -> String,
) -> Result<Response, ApiError> {
    let limit = q.limit()?;
    let more = items.len() > limit;
    items.truncate(limit);
    let next = more.then(|| items.last().map(&key)).flatten();
    Ok(answer(items, limit, path, next))
}

/// The JSON page with its `Link` and `Next-Range` headers when `next` is given.
fn answer<T: Serialize>(page: Vec<T>, limit: usize, path: &str, next: Option<String>) -> Response {
    let mut resp = Json(page).into_response();
    if let Some(next) = next {
        let link = format!(
            "<{path}?limit={limit}&after={}>; rel=\"next\"",
            encode(&next)
        );
        if let (Ok(link), Ok(range)) = (HeaderValue::from_str(&link), HeaderValue::from_str(&next))
        {
            resp.headers_mut().insert(header::LINK, link);
            resp.headers_mut().insert("next-range", range);
        }
    }
    resp
}

/// Percent-encodes what is not unreserved in a query value.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(limit: Option<u32>, after: Option<&str>) -> PageQuery {
        PageQuery {
            limit,
            after: after.map(str::to_string),
        }
    }

    async fn body(r: Response) -> (Option<String>, Vec<u32>) {
        let link = r
            .headers()
            .get(header::LINK)
            .map(|v| v.to_str().unwrap().to_string());
        let b = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
        (link, serde_json::from_slice(&b).unwrap())
    }

    #[tokio::test]
    async fn pages_follow_the_next_link_to_the_end() {
        let items: Vec<u32> = (1..=5).collect();
        let key = |i: &u32| i.to_string();
        // What a keyset query answers: up to `fetch` rows after the key.
        let store = |q: &PageQuery| {
            let after: u32 = q.after.as_deref().map_or(0, |a| a.parse().unwrap());
            let fetch = q.fetch().unwrap() as usize;
            items
                .iter()
                .copied()
                .filter(|i| *i > after)
                .take(fetch)
                .collect::<Vec<_>>()
        };
        let first = q(Some(2), None);
        let (link, got) = body(page_of(store(&first), &first, "/v1/x", key).unwrap()).await;
        assert_eq!(got, [1, 2]);
        assert_eq!(
            link.as_deref(),
            Some("</v1/x?limit=2&after=2>; rel=\"next\"")
        );
        let second = q(Some(2), Some("2"));
        let (_, got) = body(page_of(store(&second), &second, "/v1/x", key).unwrap()).await;
        assert_eq!(got, [3, 4]);
        let last = q(Some(2), Some("4"));
        let (link, got) = body(page_of(store(&last), &last, "/v1/x", key).unwrap()).await;
        assert_eq!((link, got), (None, vec![5]));
        let all = q(None, None);
        let (link, got) = body(page_of(store(&all), &all, "/v1/x", key).unwrap()).await;
        assert_eq!((link, got.len()), (None, 5));
        assert!(q(Some(0), None).fetch().is_err());
    }
}
