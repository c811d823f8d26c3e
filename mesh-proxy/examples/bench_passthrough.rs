//! Run with `cargo run --release -p mesh-proxy --example bench_passthrough -- 127.0.0.1:0 127.0.0.1:8080`
//!
//! The floor for the proxy benchmarks (`benches/run.sh`): a minimal hyper pass-through proxy —
//! accept HTTP/1.1, forward every request to one upstream with a pooled hyper-util client, stream
//! the answer back. No routing, no policy, no metrics: what any Rust proxy costs at least.
//! One thread. Prints `listening on ADDR`.

use std::convert::Infallible;

use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:0".into());
    let upstream: http::uri::Authority = args.next().unwrap_or_else(|| "127.0.0.1:8080".into()).parse()?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async move {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client: Client<HttpConnector, Incoming> = Client::builder(TokioExecutor::new()).build(connector);
        let listener = tokio::net::TcpListener::bind(&listen).await?;
        println!("listening on {}", listener.local_addr()?);
        loop {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            let (client, upstream) = (client.clone(), upstream.clone());
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: http::Request<Incoming>| {
                    let (client, upstream) = (client.clone(), upstream.clone());
                    async move {
                        let (mut parts, body) = req.into_parts();
                        let mut uri = parts.uri.into_parts();
                        uri.scheme = Some(http::uri::Scheme::HTTP);
                        uri.authority = Some(upstream);
                        parts.uri = http::Uri::from_parts(uri).unwrap_or_default();
                        let response = match client.request(http::Request::from_parts(parts, body)).await {
                            Ok(r) => r.map(http_body_util::Either::Left),
                            Err(_) => {
                                let mut r =
                                    http::Response::new(http_body_util::Either::Right(http_body_util::Empty::new()));
                                *r.status_mut() = http::StatusCode::BAD_GATEWAY;
                                r
                            }
                        };
                        Ok::<_, Infallible>(response)
                    }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}
