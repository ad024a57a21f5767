//! The pieces of `bench/run router` (see bench/router.sh), one binary, three roles:
//!
//! * `router_bench backend LISTEN` — a tiny hyper HTTP/1.1 server answering every request
//!   with `200 hello` (the fast backend every proxy is measured against).
//! * `router_bench router LISTEN BACKEND` — the paas router (`paas_router`, the
//!   code the controller runs) serving `Host: bench.localhost` → BACKEND.
//! * `router_bench load ADDR HOST CONNECTIONS SECONDS` — the load generator: a fixed number
//!   of keep-alive HTTP/1.1 connections, each sending its next request when the previous
//!   answer ended, for a fixed time. Prints `<req/s> <p50 ms> <p99 ms> <errors>`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use paas_router::{Backend, Route, RouteTable};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn usage() -> ! {
    eprintln!(
        "usage: router_bench backend LISTEN | router LISTEN BACKEND | \
         load ADDR HOST CONNECTIONS SECONDS"
    );
    std::process::exit(2)
}

fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rt = tokio::runtime::Runtime::new()?;
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["backend", listen] => rt.block_on(backend(listen)),
        ["router", listen, backend] => rt.block_on(router(listen, backend)),
        ["load", addr, host, conns, secs] => {
            rt.block_on(load(addr, host, conns.parse()?, secs.parse()?))
        }
        _ => usage(),
    }
}

async fn backend(listen: &str) -> Result<(), BoxError> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        tokio::spawn(async move {
            let service = hyper::service::service_fn(|_req| async {
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"hello\n"))))
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn router(listen: &str, backend: &str) -> Result<(), BoxError> {
    let table = RouteTable::new();
    table.replace(vec![Route {
        app: "bench".into(),
        hosts: vec!["bench.localhost".into()],
        backends: vec![Backend {
            addr: backend.into(),
            job_id: "bench-web-1".into(),
        }],
    }]);
    let listener = tokio::net::TcpListener::bind(listen).await?;
    paas_router::serve(listener, table).await?;
    Ok(())
}

/// One connection's loop: requests back to back until `until`; latencies in µs.
async fn connection(addr: String, host: String, until: Instant) -> (Vec<u32>, u64) {
    let mut latencies = Vec::new();
    let mut errors = 0;
    while Instant::now() < until {
        let Ok(stream) = tokio::net::TcpStream::connect(&addr).await else {
            errors += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let Ok((mut sender, conn)) =
            hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(stream)).await
        else {
            errors += 1;
            continue;
        };
        tokio::spawn(conn);
        while Instant::now() < until {
            let req = Request::get("/")
                .header("host", host.as_str())
                .body(Empty::new())
                .expect("a valid request");
            let start = Instant::now();
            let ok = match sender.send_request(req).await {
                Ok(resp) => {
                    let status = resp.status();
                    resp.into_body().collect().await.is_ok() && status.is_success()
                }
                Err(_) => false,
            };
            if ok {
                latencies.push(start.elapsed().as_micros().min(u32::MAX as u128) as u32);
            } else {
                errors += 1;
                break; // a new connection
            }
        }
    }
    (latencies, errors)
}

async fn load(addr: &str, host: &str, conns: usize, secs: f64) -> Result<(), BoxError> {
    let addr = Arc::new(addr.to_string());
    let start = Instant::now();
    let until = start + Duration::from_secs_f64(secs);
    let tasks: Vec<_> = (0..conns)
        .map(|_| tokio::spawn(connection(addr.to_string(), host.to_string(), until)))
        .collect();
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await?;
        all.extend(l);
        errors += e;
    }
    let elapsed = start.elapsed().as_secs_f64();
    all.sort_unstable();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .map_or(0.0, |&us| us as f64 / 1000.0)
    };
    println!(
        "{:.0} {:.3} {:.3} {}",
        all.len() as f64 / elapsed,
        pct(0.50),
        pct(0.99),
        errors
    );
    Ok(())
}
