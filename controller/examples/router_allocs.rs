//! Counts heap allocations per proxied request on the router's fast path (bodyless GETs,
//! `router/raw.rs`), to check that a change to the request path adds none.
//!
//! One process holds a counting global allocator, a backend that answers every request with
//! a fixed `200 hello` from stack buffers, the paas router (`router::serve`, as the
//! controller runs it) and one keep-alive client writing a fixed request and reading the
//! answer into a stack buffer. The client and backend allocate nothing per request after
//! warm-up, so the printed figure is (almost all) the router's:
//!
//!     cargo run --release -p paas-controller --example router_allocs [REQUESTS]
//!
//! prints `router allocations per request: <n> (<requests> requests)` (and how many access
//! lines the history then holds, to show it was written). Compare the figure
//! before and after a change; it is not meant to be zero (hyper's server and the header map
//! allocate).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

use paas_controller::router::{Backend, Route, RouteTable};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The system allocator, counting allocations (reallocations count as one).
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is passed on unchanged to the system allocator, which upholds the
// `GlobalAlloc` contract; the counter is a side effect only.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's layout is passed on as given.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` with this layout (every allocation goes there).
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as for `dealloc`; the new size comes from the caller.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
const REQUEST: &[u8] = b"GET /allocs HTTP/1.1\r\nHost: allocs.localhost\r\n\r\n";

/// Reads until `buf[..n]` holds a whole head (and `body` more bytes); returns the length.
async fn read_message(s: &mut TcpStream, buf: &mut [u8; 4096], body: usize) -> Option<usize> {
    let mut n = 0;
    loop {
        if let Some(end) = buf[..n].windows(4).position(|w| w == b"\r\n\r\n") {
            if n >= end + 4 + body {
                return Some(n);
            }
        }
        let got = s.read(&mut buf[n..]).await.ok()?;
        if got == 0 {
            return None;
        }
        n += got;
    }
}

async fn backend(listener: TcpListener) {
    loop {
        let Ok((mut s, _)) = listener.accept().await else {
            return;
        };
        let _ = s.set_nodelay(true);
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            while read_message(&mut s, &mut buf, 0).await.is_some() {
                if s.write_all(RESPONSE).await.is_err() {
                    return;
                }
            }
        });
    }
}

fn main() {
    let requests: u64 = std::env::args()
        .nth(1)
        .map_or(20_000, |n| n.parse().expect("REQUESTS is a number"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    rt.block_on(async move {
        let backend_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let backend_addr = backend_listener.local_addr().unwrap().to_string();
        tokio::spawn(backend(backend_listener));
        let table = RouteTable::new();
        table.replace(vec![Route {
            app: "allocs".into(),
            hosts: vec!["allocs.localhost".into()],
            backends: vec![Backend {
                addr: backend_addr,
                job_id: "allocs-web-1".into(),
            }],
        }]);
        let router_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let router_addr = router_listener.local_addr().unwrap();
        tokio::spawn(paas_controller::router::serve(
            router_listener,
            table.clone(),
        ));

        let mut client = TcpStream::connect(router_addr).await.unwrap();
        client.set_nodelay(true).unwrap();
        let mut buf = [0u8; 4096];
        let mut round = async |count: u64| {
            for _ in 0..count {
                client.write_all(REQUEST).await.unwrap();
                read_message(&mut client, &mut buf, 5)
                    .await
                    .expect("an answer");
                assert!(buf.starts_with(b"HTTP/1.1 200"), "the router answered 200");
            }
        };
        // Warm-up: pools, idle lists, history rings and buffers reach their size.
        round(2_000).await;
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        round(requests).await;
        let after = ALLOCATIONS.load(Ordering::Relaxed);
        println!(
            "router allocations per request: {:.2} ({requests} requests)",
            (after - before) as f64 / requests as f64
        );
        // The requests were kept: the history holds its limit's worth.
        println!(
            "history lines kept: {}",
            table.access_log().history("allocs").await.len()
        );
    });
}
