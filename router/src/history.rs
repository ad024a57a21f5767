//! The router's access history: the last [`HistoryLimits::lines`] requests of each app, kept
//! by each router thread for itself and merged when someone reads them (`paas logs`).
//!
//! The request path stays cheap: a request leaves a fixed-size [`Request`] (times, status,
//! method, bytes, a path and request id cut to a fixed length; no heap) in a ring owned by
//! its router thread (a `thread_local`, so no lock and no shared cache line), and the text
//! is only formatted when read. The host and job names are `Arc<str>`s of the route
//! table; a ring keeps each name it saw once and its entries refer to them by index, found
//! by pointer, so the request path clones no `Arc` either. A reader asks every router
//! thread through a channel ([`Query`]); the thread answers with a copy of the app's ring
//! between two connections it serves.
//!
//! Memory is bounded per router thread: at most [`HistoryLimits::apps`] rings (the one
//! written longest ago goes first; rings of apps gone from the table before that) of at
//! most `lines` entries of `size_of::<Kept>()` bytes (about 250). Rings grow as requests
//! come, so quiet apps take little.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, Weak};

use http::Method;
use tokio::sync::oneshot;

use super::access::AppAccess;

/// The longest path kept (longer ones are cut and shown ending in `...`).
pub const PATH_CAP: usize = 128;
/// The longest request id kept (a generated one is 32 characters; longer ones are cut).
pub const REQUEST_ID_CAP: usize = 64;
/// How many requests each app's history keeps by default.
pub const DEFAULT_LINES: usize = 1000;
/// How many apps each router thread keeps a history for by default.
pub const DEFAULT_APPS: usize = 100;

/// How much history the router keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryLimits {
    /// Requests kept per app (on each router thread; a read returns the newest this many).
    /// 0 keeps none.
    pub lines: usize,
    /// Apps a router thread keeps requests of. 0 keeps none.
    pub apps: usize,
}

impl Default for HistoryLimits {
    fn default() -> HistoryLimits {
        HistoryLimits {
            lines: DEFAULT_LINES,
            apps: DEFAULT_APPS,
        }
    }
}

/// A string of at most `N` bytes kept inline (cut at a character boundary).
#[derive(Clone, Copy)]
pub(crate) struct Capped<const N: usize> {
    len: u8,
    cut: bool,
    bytes: [u8; N],
}

impl<const N: usize> Capped<N> {
    pub(crate) fn new(s: &str) -> Capped<N> {
        const { assert!(N <= u8::MAX as usize) };
        let mut len = s.len().min(N);
        while !s.is_char_boundary(len) {
            len -= 1;
        }
        let mut bytes = [0u8; N];
        bytes[..len].copy_from_slice(&s.as_bytes()[..len]);
        Capped {
            len: len as u8,
            cut: len < s.len(),
            bytes,
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        // Cut at a character boundary of a `str` in `new`.
        std::str::from_utf8(&self.bytes[..self.len as usize]).unwrap_or_default()
    }

    /// True when the original was longer.
    pub(crate) fn cut(&self) -> bool {
        self.cut
    }
}

impl<const N: usize> std::fmt::Debug for Capped<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:?}{}",
            self.as_str(),
            if self.cut { "..." } else { "" }
        )
    }
}

/// What is kept of one request (fixed size: no heap, nothing to free).
#[derive(Debug, Clone)]
pub(crate) struct Request {
    /// When the response ended (or the error page was sent), µs since the Unix epoch.
    pub(crate) at_us: i64,
    pub(crate) service_ms: u32,
    pub(crate) status: u16,
    pub(crate) https: bool,
    /// Standard methods and extension methods of ≤ 15 bytes are copied without the heap.
    pub(crate) method: Method,
    pub(crate) bytes: u64,
    pub(crate) path: Capped<PATH_CAP>,
    pub(crate) request_id: Capped<REQUEST_ID_CAP>,
}

/// The access line of a request, in Heroku's router format:
/// `<time> heroku[router]: at=info method=GET path="/" host=… protocol=http status=200
/// bytes=5 service=3ms job=… request_id=…`.
pub(crate) fn format_line(r: &Request, host: &str, job: Option<&str>) -> String {
    let path = if r.path.cut() {
        format!("{}...", r.path.as_str())
    } else {
        r.path.as_str().to_string()
    };
    format!(
        "{} heroku[router]: at={} method={} path={path:?} host={host} protocol={} status={} \
         bytes={} service={}ms job={} request_id={}{}",
        crate::clock::rfc3339_from_micros(r.at_us),
        if r.status >= 500 { "error" } else { "info" },
        r.method,
        if r.https { "https" } else { "http" },
        r.status,
        r.bytes,
        r.service_ms,
        job.unwrap_or("-"),
        r.request_id.as_str(),
        if r.request_id.cut() { "..." } else { "" },
    )
}

/// No job (the request never reached a backend).
const NO_NAME: u16 = u16::MAX;

/// A request in a ring, with its host and job as indices into the ring's names.
#[derive(Debug, Clone)]
pub(crate) struct Kept {
    req: Request,
    host: u16,
    job: u16,
}

/// One app's requests on one thread, oldest first once `next` wraps.
struct Ring {
    app: Weak<AppAccess>,
    entries: Vec<Kept>,
    /// Where the next entry goes once the ring is full.
    next: usize,
    names: Vec<Arc<str>>,
    /// Names are swept (those no entry uses dropped) when there are this many.
    sweep_at: usize,
    /// The thread's write counter at the last write (the smallest goes first).
    written: u64,
}

impl Ring {
    /// The index of `name` among the ring's names (added when new).
    fn name(&mut self, name: &Arc<str>) -> u16 {
        if let Some(i) = self.names.iter().rposition(|n| Arc::ptr_eq(n, name)) {
            return i as u16;
        }
        if self.names.len() >= self.sweep_at {
            self.sweep_names();
        }
        if self.names.len() >= NO_NAME as usize {
            return NO_NAME;
        }
        self.names.push(Arc::clone(name));
        (self.names.len() - 1) as u16
    }

    /// Drops the names no entry uses and renumbers the rest (a ring sees a new job name per
    /// deploy; this keeps the list at most twice the entries, in amortized O(1) per name).
    fn sweep_names(&mut self) {
        let mut used = vec![false; self.names.len()];
        for e in &self.entries {
            for i in [e.host, e.job] {
                if let Some(u) = used.get_mut(i as usize) {
                    *u = true;
                }
            }
        }
        let mut renumber = vec![NO_NAME; self.names.len()];
        let mut kept = Vec::with_capacity(self.names.len());
        for (i, name) in std::mem::take(&mut self.names).into_iter().enumerate() {
            if used[i] {
                renumber[i] = kept.len() as u16;
                kept.push(name);
            }
        }
        for e in &mut self.entries {
            for i in [&mut e.host, &mut e.job] {
                *i = renumber.get(*i as usize).copied().unwrap_or(NO_NAME);
            }
        }
        self.names = kept;
        self.sweep_at = (2 * self.names.len()).max(16);
    }

    fn push(&mut self, kept: Kept, cap: usize) {
        if self.entries.len() < cap {
            self.entries.push(kept);
        } else {
            self.entries[self.next] = kept;
            self.next = (self.next + 1) % cap;
        }
    }

    /// The entries oldest first.
    fn ordered(&self) -> impl Iterator<Item = &Kept> {
        let (new, old) = self.entries.split_at(self.next.min(self.entries.len()));
        old.iter().chain(new)
    }
}

/// A hasher for app ids (sequential numbers): one multiplication.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// One router thread's rings, by app id.
pub(crate) struct Rings {
    limits: HistoryLimits,
    by_app: HashMap<u64, Ring, BuildHasherDefault<IdHasher>>,
    writes: u64,
}

impl Rings {
    pub(crate) fn new(limits: HistoryLimits) -> Rings {
        Rings {
            limits,
            by_app: HashMap::default(),
            writes: 0,
        }
    }

    /// Keeps `req` of `app`, served for `host` by `job`.
    pub(crate) fn push(
        &mut self,
        app: &Arc<AppAccess>,
        host: &Arc<str>,
        job: Option<&Arc<str>>,
        req: &Request,
    ) {
        let HistoryLimits { lines, apps } = self.limits;
        if lines == 0 || apps == 0 {
            return;
        }
        self.writes += 1;
        if !self.by_app.contains_key(&app.id) {
            self.make_room(apps - 1);
            self.by_app.insert(
                app.id,
                Ring {
                    app: Arc::downgrade(app),
                    entries: Vec::new(),
                    next: 0,
                    names: Vec::new(),
                    sweep_at: 16,
                    written: 0,
                },
            );
        }
        let ring = self.by_app.get_mut(&app.id).expect("inserted above");
        ring.written = self.writes;
        let host = ring.name(host);
        let job = job.map_or(NO_NAME, |j| ring.name(j));
        ring.push(
            Kept {
                req: req.clone(),
                host,
                job,
            },
            lines,
        );
    }

    /// Drops rings until at most `keep` are left: first those of apps no longer in the
    /// table, then the ones written longest ago.
    fn make_room(&mut self, keep: usize) {
        if self.by_app.len() <= keep {
            return;
        }
        self.by_app.retain(|_, r| r.app.strong_count() > 0);
        while self.by_app.len() > keep {
            let Some(oldest) = self
                .by_app
                .iter()
                .min_by_key(|(_, r)| r.written)
                .map(|(id, _)| *id)
            else {
                break;
            };
            self.by_app.remove(&oldest);
        }
    }

    /// A copy of app `id`'s ring, oldest first.
    pub(crate) fn copy(&self, id: u64) -> Copied {
        match self.by_app.get(&id) {
            Some(ring) => Copied {
                entries: ring.ordered().cloned().collect(),
                names: ring.names.clone(),
            },
            None => Copied::default(),
        }
    }
}

/// One thread's copy of an app's ring.
#[derive(Default)]
pub(crate) struct Copied {
    entries: Vec<Kept>,
    names: Vec<Arc<str>>,
}

impl Copied {
    /// The entries as access lines with their times, oldest first.
    pub(crate) fn lines(&self) -> impl Iterator<Item = (i64, String)> + '_ {
        let name = |i: u16| self.names.get(i as usize).map(|n| &**n);
        self.entries.iter().map(move |k| {
            (
                k.req.at_us,
                format_line(&k.req, name(k.host).unwrap_or("-"), name(k.job)),
            )
        })
    }
}

/// A reader's question to a router thread: app `id`'s ring, please.
pub(crate) struct Query {
    pub(crate) id: u64,
    pub(crate) reply: oneshot::Sender<Copied>,
}

thread_local! {
    /// This router thread's rings (None on threads that serve no router).
    static RINGS: RefCell<Option<Rings>> = const { RefCell::new(None) };
}

/// Makes the calling thread a router thread keeping history within `limits`.
pub(crate) fn start_thread(limits: HistoryLimits) {
    RINGS.with(|r| *r.borrow_mut() = Some(Rings::new(limits)));
}

/// Keeps `req` in this thread's rings (nothing on a thread `start_thread` did not set up).
pub(crate) fn record(app: &Arc<AppAccess>, host: &Arc<str>, job: Option<&Arc<str>>, req: &Request) {
    RINGS.with(|r| {
        if let Ok(mut rings) = r.try_borrow_mut() {
            if let Some(rings) = rings.as_mut() {
                rings.push(app, host, job, req);
            }
        }
    });
}

/// Answers a reader from this thread's rings.
pub(crate) fn answer(q: Query) {
    let copy = RINGS.with(|r| r.borrow().as_ref().map(|rings| rings.copy(q.id)));
    let _ = q.reply.send(copy.unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(at_us: i64, path: &str) -> Request {
        Request {
            at_us,
            service_ms: 3,
            status: 200,
            https: false,
            method: Method::GET,
            bytes: 5,
            path: Capped::new(path),
            request_id: Capped::new("abc"),
        }
    }

    fn paths(c: &Copied) -> Vec<String> {
        c.lines()
            .map(|(_, l)| l.split('"').nth(1).unwrap().to_string())
            .collect()
    }

    #[test]
    fn a_ring_keeps_the_last_lines_in_order() {
        let app = Arc::new(AppAccess::new(7));
        let host: Arc<str> = "a.localhost".into();
        let job: Arc<str> = "a-web-1".into();
        let mut rings = Rings::new(HistoryLimits { lines: 3, apps: 2 });
        for i in 0..10 {
            rings.push(&app, &host, Some(&job), &req(i, &format!("/{i}")));
        }
        let copy = rings.copy(7);
        assert_eq!(
            paths(&copy),
            ["/7", "/8", "/9"],
            "the newest 3, oldest first"
        );
        assert_eq!(copy.names.len(), 2, "host and job kept once");
        let (at, line) = copy.lines().next().unwrap();
        assert_eq!(at, 7);
        assert_eq!(
            line,
            "1970-01-01T00:00:00.000007Z heroku[router]: at=info method=GET path=\"/7\" \
             host=a.localhost protocol=http status=200 bytes=5 service=3ms job=a-web-1 \
             request_id=abc"
        );
        assert_eq!(rings.copy(8).entries.len(), 0, "another app has none");
    }

    #[test]
    fn apps_beyond_the_limit_push_out_the_quietest() {
        let [a0, a1, a2, a3] = [0, 1, 2, 3].map(|i| Arc::new(AppAccess::new(i)));
        let host: Arc<str> = "h".into();
        let mut rings = Rings::new(HistoryLimits { lines: 5, apps: 2 });
        rings.push(&a0, &host, None, &req(1, "/0"));
        rings.push(&a1, &host, None, &req(2, "/1"));
        rings.push(&a0, &host, None, &req(3, "/0b"));
        rings.push(&a2, &host, None, &req(4, "/2"));
        assert_eq!(rings.by_app.len(), 2);
        assert!(
            rings.copy(1).entries.is_empty(),
            "app 1 was written longest ago"
        );
        assert_eq!(paths(&rings.copy(0)), ["/0", "/0b"]);
        // An app gone from the table goes before a live one, even a quieter one.
        rings.push(&a2, &host, None, &req(5, "/2b"));
        drop(a2);
        rings.push(&a3, &host, None, &req(6, "/3"));
        assert!(
            rings.copy(2).entries.is_empty(),
            "the dropped app's ring went"
        );
        assert_eq!(rings.copy(0).entries.len(), 2, "the live one stayed");
        assert_eq!(rings.by_app.len(), 2);
        drop((a1, a3));
    }

    #[test]
    fn names_no_entry_uses_are_swept() {
        let app = Arc::new(AppAccess::new(1));
        let host: Arc<str> = "h".into();
        let mut rings = Rings::new(HistoryLimits { lines: 4, apps: 1 });
        // A new job name for every request, as if each were a new deploy.
        for i in 0..1000 {
            let job: Arc<str> = format!("job-{i}").into();
            rings.push(&app, &host, Some(&job), &req(i, "/"));
        }
        let copy = rings.copy(1);
        assert!(copy.names.len() <= 16 + 1, "{}", copy.names.len());
        let jobs: Vec<String> = copy
            .lines()
            .map(|(_, l)| l.split(" job=").nth(1).unwrap().to_string())
            .collect();
        assert_eq!(
            jobs,
            [
                "job-996 request_id=abc",
                "job-997 request_id=abc",
                "job-998 request_id=abc",
                "job-999 request_id=abc"
            ]
        );
    }

    #[test]
    fn long_paths_are_cut_at_a_character_boundary() {
        let long = format!("/{}", "é".repeat(100));
        let c: Capped<PATH_CAP> = Capped::new(&long);
        assert!(c.cut());
        assert!(c.as_str().len() <= PATH_CAP && long.starts_with(c.as_str()));
        let mut r = req(0, &long);
        r.status = 502;
        let line = format_line(&r, "h", None);
        assert!(line.contains("...\" host=h"), "{line}");
        assert!(
            line.contains("at=error") && line.contains("job=- "),
            "{line}"
        );
        assert!(
            std::mem::size_of::<Kept>() <= 256,
            "{}",
            std::mem::size_of::<Kept>()
        );
    }
}
