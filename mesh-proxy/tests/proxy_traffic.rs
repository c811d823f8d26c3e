//! `mesh proxy` as a process, with Istio's traffic policies end to end: weighted routing,
//! retries, faults, timeouts, outlier detection, connection-pool overflow, HTTP/2 (h2c), gRPC and
//! WebSocket upgrades. Real upstreams on loopback, real config files.

mod support;

use std::time::Duration;

use tokio::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use support::*;

fn routes() -> String {
    r#"
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route:
    - {destination: {host: reviews, subset: v1}, weight: 80}
    - {destination: {host: reviews, subset: v2}, weight: 20}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings}
spec:
  hosts: [ratings]
  http:
  - match: [{uri: {prefix: /abort}}]
    fault: {abort: {httpStatus: 500, percentage: {value: 100}}}
    route: [{destination: {host: ratings}}]
  - match: [{uri: {prefix: /delay}}]
    fault: {delay: {fixedDelay: 400ms, percentage: {value: 100}}}
    route: [{destination: {host: ratings}}]
  - match: [{uri: {prefix: /slow}}]
    timeout: 100ms
    route: [{destination: {host: ratings}}]
  - route: [{destination: {host: ratings}}]
    retries: {attempts: 3, retryOn: 5xx, perTryTimeout: 2s}
"#
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weighted_routing_retries_faults_and_timeouts() {
    let (v1, v2, ratings) = (backend("v1").await, backend("v2").await, backend("ratings").await);
    let (counted, upstream) = counting_backend().await;
    let dir = config_dir("traffic");
    let mut config = service_entry("reviews", "reviews.default.svc.cluster.local", &[(v1.port, "v1"), (v2.port, "v2")]);
    config.push_str(&service_entry("counted", "counted.default.svc.cluster.local", &[(counted, "v1")]));
    config.push_str(&service_entry("ratings", "ratings.default.svc.cluster.local", &[(ratings.port, "v1")]));
    config.push_str(&routes());
    std::fs::write(dir.join("config.yaml"), config).expect("write");
    let proxy = start_proxy(&dir, &["--listen", "127.0.0.1:0"]);
    let client = client();
    let listen = proxy.listen().to_string();

    // Keep-alive upstream: sequential requests on one client connection reuse one upstream
    // connection.
    let tcp = tokio::net::TcpStream::connect(&listen).await.expect("connect");
    let (mut one, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp)).await.expect("handshake");
    tokio::spawn(conn);
    for _ in 0..20 {
        one.ready().await.expect("the client connection stays open");
        let req = http::Request::get("/a?b=1").header("host", "counted").body(Empty::<Bytes>::new()).expect("req");
        let response = one.send_request(req).await.expect("response");
        // Origin-form request-target, the caller's Host.
        assert_eq!(response.into_body().collect().await.expect("body").to_bytes(), "/a?b=1 counted");
    }
    let load = |n: &std::sync::atomic::AtomicUsize| n.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(load(&upstream.accepted), 1, "one upstream connection for 20 requests");
    // The upstream connection belongs to the client's connection: it closes with it.
    drop(one);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while load(&upstream.open) > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(load(&upstream.open), 0, "the upstream connection closed with the client's");

    // 80/20 between subsets.
    let mut v1_share = 0;
    for _ in 0..1000 {
        let (status, body, _) = get(&client, &listen, "reviews", "/reviews/0", &[]).await;
        assert_eq!(status, 200);
        v1_share += usize::from(body == "v1");
    }
    assert!((740..=860).contains(&v1_share), "80/20 split: {v1_share} of 1000 went to v1");

    // Retries recover 503s: the upstream fails two requests out of three.
    let before = ratings.hits();
    for _ in 0..20 {
        assert_eq!(get(&client, &listen, "ratings", "/flaky", &[]).await.0, 200, "a retry recovered the 503");
    }
    assert_eq!(ratings.hits() - before, 60, "each request took three tries");
    let metrics = admin(&client, &proxy.admin, "/metrics").await;
    let retries = metrics
        .lines()
        .find(|l| l.starts_with("envoy_cluster_upstream_rq_retry{") && l.contains("ratings.default.svc.cluster.local"))
        .unwrap_or_else(|| panic!("no retry counter in:\n{metrics}"));
    assert!(retries.ends_with(" 40"), "two retries for each of 20 requests: {retries}");
    // ...and stop after `attempts`: the last 503 goes back to the client.
    let (status, _, _) = get(&client, &listen, "ratings", "/status/503", &[]).await;
    assert_eq!(status, 503);

    // Abort fault: the upstream is never called.
    let before = ratings.hits();
    let (status, body, _) = get(&client, &listen, "ratings", "/abort", &[]).await;
    assert_eq!((status, body.as_str()), (500, "fault filter abort"));
    assert_eq!(ratings.hits(), before);

    // Delay fault.
    let started = Instant::now();
    let (status, _, _) = get(&client, &listen, "ratings", "/delay", &[]).await;
    assert_eq!(status, 200);
    assert!(started.elapsed() >= Duration::from_millis(400), "delayed {:?}", started.elapsed());

    // Route timeout: the upstream takes 300 ms, the route allows 100 ms.
    let (status, body, _) = get(&client, &listen, "ratings", "/slow", &[]).await;
    assert_eq!((status, body.as_str()), (504, "upstream request timeout"));
    let _ = std::fs::remove_dir_all(&dir);
}

const RESILIENCE: &str = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: checkout}
spec:
  hosts: [checkout]
  http:
  # No retries (Istio's default policy would retry the 503s on the other endpoint).
  - route: [{destination: {host: checkout}}]
    retries: {attempts: 0}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: checkout}
spec:
  host: checkout
  trafficPolicy:
    loadBalancer: {simple: ROUND_ROBIN}
    outlierDetection:
      consecutive5xxErrors: 3
      interval: 10s
      baseEjectionTime: 60s
      maxEjectionPercent: 100
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: inventory}
spec:
  host: inventory
  trafficPolicy:
    connectionPool:
      tcp: {maxConnections: 1}
      http: {http1MaxPendingRequests: 1, http2MaxRequests: 1, maxRequestsPerConnection: 1}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outlier_ejection_and_connection_pool_overflow() {
    let (good, inventory) = (backend("good").await, backend("inventory").await);
    let failing = failing_backend().await;
    let dir = config_dir("resilience");
    let mut config =
        service_entry("checkout", "checkout.default.svc.cluster.local", &[(good.port, "v1"), (failing, "v1")]);
    config.push_str(&service_entry("inventory", "inventory.default.svc.cluster.local", &[(inventory.port, "v1")]));
    config.push_str(RESILIENCE);
    std::fs::write(dir.join("config.yaml"), config).expect("write");
    let proxy = start_proxy(&dir, &["--listen", "127.0.0.1:0"]);
    let client = client();
    let listen = proxy.listen().to_string();

    // Round robin alternates; after 3 consecutive 5xx the failing endpoint is ejected.
    let mut failures = 0;
    let mut last = Vec::new();
    for i in 0..40 {
        let (status, _, _) = get(&client, &listen, "checkout", "/", &[]).await;
        if status != 200 {
            failures += 1;
        }
        if i >= 20 {
            last.push(status);
        }
    }
    assert_eq!(failures, 3, "the failing endpoint was ejected after 3 consecutive 5xx");
    assert!(last.iter().all(|s| *s == 200), "{last:?}");
    let clusters = admin(&client, &proxy.admin, "/clusters").await;
    let clusters: serde_json::Value = serde_json::from_str(&clusters).expect("json");
    let ejected: Vec<String> = clusters
        .as_array()
        .expect("clusters")
        .iter()
        .flat_map(|c| c["endpoints"].as_array().cloned().unwrap_or_default())
        .filter(|e| e["ejected"] == true)
        .map(|e| e["address"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(ejected, vec![format!("127.0.0.1:{failing}")], "{clusters}");

    // Connection pool: one request at a time, one waiting; the rest are refused at once.
    let mut calls = Vec::new();
    for _ in 0..8 {
        let (client, listen) = (client.clone(), listen.clone());
        calls.push(tokio::spawn(async move {
            let (status, _, headers) = get(&client, &listen, "inventory", "/slow", &[]).await;
            (status, headers.get("x-envoy-overloaded").is_some())
        }));
    }
    let mut ok = 0;
    let mut overflow = 0;
    for call in calls {
        let (status, overloaded) = call.await.expect("task");
        match status {
            200 => ok += 1,
            503 => {
                assert!(overloaded, "an overflow 503 says x-envoy-overloaded");
                overflow += 1;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(ok >= 1 && overflow >= 5, "{ok} served, {overflow} refused");
    let metrics = admin(&client, &proxy.admin, "/metrics").await;
    assert!(metrics.contains("response_flags=\"UO\""), "overflow is counted with flag UO");
    // The counters operators look for, named as Istio exports Envoy's cluster stats.
    let stat = |name: &str, cluster: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with(name) && l.contains(&format!("cluster_name=\"{cluster}\"")))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
    };
    assert_eq!(
        stat("envoy_cluster_upstream_rq_pending_overflow", "outbound|80||inventory.default.svc.cluster.local"),
        Some(overflow as f64),
        "{metrics}"
    );
    assert_eq!(
        stat("envoy_cluster_outlier_detection_ejections_active", "outbound|80||checkout.default.svc.cluster.local"),
        Some(1.0)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_timeout_cuts_a_body_that_stalls() {
    // The upstream sends its headers and 6 of 10 body bytes at once, the rest 2 s later; the
    // route allows 300 ms. Envoy's route timeout lasts until the response is complete, and once
    // the status is on its way the only way to fail the request is to cut the stream.
    let port = serve_each(|mut stream| async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nfirst;").await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let _ = stream.write_all(b"rest").await;
    })
    .await;
    let dir = config_dir("body-timeout");
    let mut config = service_entry("stalled", "stalled.default.svc.cluster.local", &[(port, "v1")]);
    config.push_str(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: stalled}\nspec:\n  hosts: [stalled]\n  http:\n  - route: [{destination: {host: stalled}}]\n    timeout: 300ms\n",
    );
    std::fs::write(dir.join("config.yaml"), config).expect("write");
    let proxy = start_proxy(&dir, &["--listen", "127.0.0.1:0"]);
    let client = client();
    let started = Instant::now();
    let uri: http::Uri = format!("http://{}/", proxy.listen()).parse().expect("uri");
    let req = http::Request::get(uri).header("host", "stalled").body(Empty::<Bytes>::new()).expect("req");
    let response = client.request(req).await.expect("the headers come in time");
    assert_eq!(response.status(), 200);
    let read = response.into_body().collect().await;
    let waited = started.elapsed();
    assert!(read.is_err(), "the body is cut short, not completed: {read:?}");
    assert!(waited >= Duration::from_millis(300) && waited < Duration::from_secs(2), "{waited:?}");
    let metrics = admin(&client, &proxy.admin, "/metrics").await;
    let cut = metrics
        .lines()
        .find(|l| l.starts_with("istio_requests_total{") && l.contains("destination_service_name=\"stalled\""))
        .unwrap_or_default();
    assert!(cut.contains("response_code=\"200\"") && cut.contains("response_flags=\"UT\""), "{metrics}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_variables_read_the_client_connection() {
    let echo = backend("echo").await;
    let dir = config_dir("header-vars");
    let mut config = service_entry("echo", "echo.default.svc.cluster.local", &[(echo.port, "v1")]);
    config.push_str(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: echo}\nspec:\n  hosts: [echo]\n  http:\n  - route: [{destination: {host: echo}}]\n    headers: {request: {set: {x-client-ip: \"%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%\", x-via: \"%DOWNSTREAM_LOCAL_ADDRESS%\"}}}\n",
    );
    std::fs::write(dir.join("config.yaml"), config).expect("write");
    let proxy = start_proxy(&dir, &["--listen", "127.0.0.1:0"]);
    let (status, body, _) = get(&client(), proxy.listen(), "echo", "/headers", &[]).await;
    assert_eq!(status, 200);
    assert!(body.contains("x-client-ip: 127.0.0.1\n"), "{body}");
    assert!(body.contains(&format!("x-via: {}\n", proxy.listen())), "{body}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Accept connections on 127.0.0.1 and hand each to `serve` in a task of its own; the port.
async fn serve_each<F, Fut>(serve: F) -> u16
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve(stream));
        }
    });
    port
}

/// An HTTP/1.1 upstream that answers with the request-target and Host it received, and counts
/// the connections it accepted and those still open.
async fn counting_backend() -> (u16, Counters) {
    use hyper_util::rt::TokioIo;
    let counters = Counters::default();
    let counter = counters.clone();
    let port = serve_each(move |stream| {
        counter.accepted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        counter.open.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let open = counter.open.clone();
        async move {
            let service = hyper::service::service_fn(|req: http::Request<hyper::body::Incoming>| async move {
                let host = req.headers().get("host").and_then(|h| h.to_str().ok()).unwrap_or("-").to_string();
                let seen = format!("{} {host}", req.uri());
                Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(Bytes::from(seen))))
            });
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            open.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        }
    })
    .await;
    (port, counters)
}

#[derive(Clone, Default)]
struct Counters {
    accepted: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    open: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

/// An upstream that answers 503 to everything.
async fn failing_backend() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let app = axum::Router::new().fallback(|| async { (http::StatusCode::SERVICE_UNAVAILABLE, "down") });
    tokio::spawn(async move { axum::serve(listener, app).await });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_grpc_and_websocket_through_the_proxy() {
    let web = backend("web").await;
    let greeter = greeter_server().await;
    let echo = upgrade_echo_server().await;
    let dir = config_dir("protocols");
    let mut config = service_entry("web", "web.default.svc.cluster.local", &[(web.port, "v1")]);
    config.push_str(
        &service_entry("greeter", "greeter.default.svc.cluster.local", &[(greeter, "v1")])
            .replace("protocol: HTTP}", "protocol: GRPC}"),
    );
    config.push_str(&service_entry("echo", "echo.default.svc.cluster.local", &[(echo, "v1")]));
    config.push_str(
        r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: greeter}
spec:
  hosts: [greeter]
  http:
  - match: [{headers: {end-user: {exact: tester}}}]
    fault: {abort: {grpcStatus: RESOURCE_EXHAUSTED, percentage: {value: 100}}}
    route: [{destination: {host: greeter}}]
  - route: [{destination: {host: greeter}}]
"#,
    );
    std::fs::write(dir.join("config.yaml"), config).expect("write");
    let proxy = start_proxy(&dir, &["--listen", "127.0.0.1:0"]);
    let listen = proxy.listen().to_string();

    // h2c with prior knowledge, end to end (the :authority names the service).
    let tcp = tokio::net::TcpStream::connect(&listen).await.expect("connect");
    let (mut h2, connection) =
        hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), hyper_util::rt::TokioIo::new(tcp))
            .await
            .expect("h2c handshake with the proxy");
    tokio::spawn(connection);
    let req = http::Request::get("http://web/").body(Empty::<Bytes>::new()).expect("req");
    let response = h2.send_request(req).await.expect("h2c through the proxy");
    assert_eq!(response.version(), http::Version::HTTP_2);
    assert_eq!(response.into_body().collect().await.expect("body").to_bytes(), "web");

    // gRPC: a tonic client through the proxy to a tonic server, and a gRPC fault.
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{listen}"))
        .expect("endpoint")
        .origin("http://greeter".parse().expect("origin"))
        .connect()
        .await
        .expect("channel");
    let reply = say_hello(channel.clone(), "meshwork", None).await.expect("the call succeeds");
    assert_eq!(reply, "hello meshwork");
    let status = say_hello(channel, "meshwork", Some("tester")).await.expect_err("the fault aborts");
    assert_eq!(status.code(), tonic::Code::ResourceExhausted);

    // WebSocket-style upgrade: after 101 the bytes flow both ways through the proxy.
    let echoed = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(&listen).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        s.write_all(b"GET /chat HTTP/1.1\r\nHost: echo\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
            .expect("write");
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            s.read_exact(&mut byte).expect("response head");
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head).into_owned();
        s.write_all(b"ping over the tunnel").expect("write upgraded");
        let mut echoed = [0u8; 20];
        s.read_exact(&mut echoed).expect("echo");
        (head, String::from_utf8_lossy(&echoed).into_owned())
    })
    .await
    .expect("join");
    assert!(echoed.0.starts_with("HTTP/1.1 101"), "{}", echoed.0);
    assert_eq!(echoed.1, "ping over the tunnel");
    let _ = std::fs::remove_dir_all(&dir);
}

/// An HTTP/1.1 server that accepts any `Upgrade` and echoes the upgraded bytes.
async fn upgrade_echo_server() -> u16 {
    use hyper_util::rt::TokioIo;
    serve_each(|stream| async move {
        let service = hyper::service::service_fn(|mut req: http::Request<hyper::body::Incoming>| async move {
            let upgrade = hyper::upgrade::on(&mut req);
            tokio::spawn(async move {
                if let Ok(upgraded) = upgrade.await {
                    let (mut r, mut w) = tokio::io::split(TokioIo::new(upgraded));
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                }
            });
            let response = http::Response::builder()
                .status(101)
                .header("connection", "upgrade")
                .header("upgrade", "websocket")
                .body(http_body_util::Empty::<Bytes>::new())
                .expect("response");
            Ok::<_, std::convert::Infallible>(response)
        });
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades()
            .await;
    })
    .await
}

/// `helloworld.HelloRequest`, by hand (no protoc).
#[derive(Clone, PartialEq, prost::Message)]
struct HelloRequest {
    #[prost(string, tag = "1")]
    name: String,
}

/// `helloworld.HelloReply`.
#[derive(Clone, PartialEq, prost::Message)]
struct HelloReply {
    #[prost(string, tag = "1")]
    message: String,
}

const SAY_HELLO: &str = "/helloworld.Greeter/SayHello";

async fn say_hello(
    channel: tonic::transport::Channel,
    name: &str,
    user: Option<&str>,
) -> Result<String, tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let mut request = tonic::Request::new(HelloRequest { name: name.into() });
    if let Some(user) = user {
        request.metadata_mut().insert("end-user", user.parse().expect("ascii"));
    }
    let codec = tonic_prost::ProstCodec::<HelloRequest, HelloReply>::default();
    let path = http::uri::PathAndQuery::from_static(SAY_HELLO);
    let reply = grpc.unary(request, path, codec).await?;
    Ok(reply.into_inner().message)
}

/// A tonic server answering Greeter/SayHello.
async fn greeter_server() -> u16 {
    #[derive(Clone)]
    struct Greeter;

    impl tonic::server::NamedService for Greeter {
        const NAME: &'static str = "helloworld.Greeter";
    }

    struct SayHello;

    impl tonic::server::UnaryService<HelloRequest> for SayHello {
        type Response = HelloReply;
        type Future = std::future::Ready<Result<tonic::Response<HelloReply>, tonic::Status>>;

        fn call(&mut self, request: tonic::Request<HelloRequest>) -> Self::Future {
            let message = format!("hello {}", request.into_inner().name);
            std::future::ready(Ok(tonic::Response::new(HelloReply { message })))
        }
    }

    impl tower::Service<http::Request<tonic::body::Body>> for Greeter {
        type Response = http::Response<tonic::body::Body>;
        type Error = std::convert::Infallible;
        type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>>;

        fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
            std::task::Poll::Ready(Ok(()))
        }

        fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
            Box::pin(async move {
                if req.uri().path() != SAY_HELLO {
                    return Ok(tonic::Status::unimplemented("no such method").into_http());
                }
                let codec = tonic_prost::ProstCodec::<HelloReply, HelloRequest>::default();
                Ok(tonic::server::Grpc::new(codec).unary(SayHello, req).await)
            })
        }
    }

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    tokio::spawn(tonic::transport::Server::builder().add_service(Greeter).serve_with_incoming(incoming));
    port
}

/// A server that answers with the HTTP version it received: HTTP/2 only (prior knowledge), or
/// HTTP/1.1 and HTTP/2 both.
async fn version_server(h2_only: bool) -> u16 {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    serve_each(move |stream| async move {
        let service = hyper::service::service_fn(|req: http::Request<hyper::body::Incoming>| async move {
            let body = http_body_util::Full::new(Bytes::from(format!("{:?}", req.version())));
            Ok::<_, std::convert::Infallible>(http::Response::new(body))
        });
        let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        if h2_only {
            builder = builder.http2_only();
        }
        let _ = builder.serve_connection(TokioIo::new(stream), service).await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destination_rules_choose_the_upstream_http_version() {
    // Both services declare a plain `http` port, which the proxy speaks in HTTP/1.1 — unless the
    // DestinationRule says `h2UpgradePolicy: UPGRADE` (HTTP/2) or `useClientProtocol: true`.
    let h2_only = version_server(true).await;
    let both = version_server(false).await;
    let dir = config_dir("h2-upgrade");
    let mut config = service_entry("modern", "modern.default.svc.cluster.local", &[(h2_only, "v1")]);
    config.push_str(&service_entry("legacy", "legacy.default.svc.cluster.local", &[(h2_only, "v1")]));
    config.push_str(&service_entry("mirror", "mirror.default.svc.cluster.local", &[(both, "v1")]));
    config.push_str(&service_entry("plain", "plain.default.svc.cluster.local", &[(both, "v1")]));
    config.push_str(
        r#"
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: modern}
spec:
  host: modern
  trafficPolicy: {connectionPool: {http: {h2UpgradePolicy: UPGRADE}}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: mirror}
spec:
  host: mirror
  trafficPolicy: {connectionPool: {http: {useClientProtocol: true}}}
"#,
    );
    std::fs::write(dir.join("config.yaml"), config).expect("write");
    let proxy = start_proxy(&dir, &["--listen", "127.0.0.1:0"]);
    let listen = proxy.listen().to_string();
    let http1 = client();

    let (status, body, _) = get(&http1, &listen, "modern", "/", &[]).await;
    assert_eq!((status, body.as_str()), (200, "HTTP/2.0"), "UPGRADE: HTTP/1.1 in, HTTP/2 out");
    let (status, _, _) = get(&http1, &listen, "legacy", "/", &[]).await;
    assert_eq!(status, 503, "no upgrade: the HTTP/2-only server cannot answer HTTP/1.1");
    let (status, body, _) = get(&http1, &listen, "mirror", "/", &[]).await;
    assert_eq!((status, body.as_str()), (200, "HTTP/1.1"));

    // An h2c client: `useClientProtocol` keeps HTTP/2 upstream; a plain port gets HTTP/1.1.
    let tcp = tokio::net::TcpStream::connect(&listen).await.expect("connect");
    let (mut h2, connection) =
        hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), hyper_util::rt::TokioIo::new(tcp))
            .await
            .expect("h2c handshake with the proxy");
    tokio::spawn(connection);
    for (host, expected) in [("mirror", "HTTP/2.0"), ("plain", "HTTP/1.1")] {
        let req = http::Request::get(format!("http://{host}/")).body(Empty::<Bytes>::new()).expect("req");
        let response = h2.send_request(req).await.expect("h2c through the proxy");
        let body = response.into_body().collect().await.expect("body").to_bytes();
        assert_eq!(body, expected, "{host}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The proxy's resident anonymous memory (Linux `/proc`: heap and stacks, not the pages of the
/// binary's code, which grow as new code paths first run), in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("RssAnon:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("RssAnon")
}

async fn cluster_hosts(client: &PlainClient, admin_addr: &str) -> Vec<String> {
    let clusters: serde_json::Value =
        serde_json::from_str(&admin(client, admin_addr, "/clusters").await).expect("clusters json");
    clusters.as_array().expect("array").iter().map(|c| c["host"].as_str().unwrap_or("").to_string()).collect()
}

/// Send `count` requests, each naming a host of its own (`Host: 127.0.N.M:PORT`: an address
/// nothing listens on, so no DNS and a fast refusal), as a client flooding the proxy with junk
/// `Host` headers would; returns the statuses seen.
async fn junk_host_flood(client: &PlainClient, listen: &str, from: usize, count: usize) -> Vec<u16> {
    let mut statuses = Vec::new();
    for i in from..from + count {
        let host = format!("127.0.{}.{}:9", 1 + i / 250, 1 + i % 250);
        let (status, _, _) = get(client, listen, &host, "/", &[]).await;
        statuses.push(status);
    }
    statuses.sort_unstable();
    statuses.dedup();
    statuses
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_request_named_hosts_leaves_clusters_metrics_and_memory_bounded() {
    let known = backend("known").await;
    let dir = config_dir("junk-hosts");
    std::fs::write(dir.join("se.yaml"), service_entry("known", "known.example.com", &[(known.port, "v1")]))
        .expect("write");
    let proxy = start_proxy(&dir, &["--listen", "127.0.0.1:0"]);
    let client = client();
    let (status, body, _) = get(&client, proxy.listen(), "known.example.com", "/", &[]).await;
    assert_eq!((status, body.as_str()), (200, "known"));
    let clusters_before = cluster_hosts(&client, &proxy.admin).await;

    // ALLOW_ANY: each junk host is passed through (and refused: 503 UF), on one shared cluster.
    // Memory is read before any metrics scrape (rendering one is a large transient buffer).
    assert_eq!(junk_host_flood(&client, proxy.listen(), 0, 1_000).await, [503]);
    let rss_after_1000 = rss_kib(proxy.child.id());
    assert_eq!(junk_host_flood(&client, proxy.listen(), 1_000, 2_000).await, [503]);
    let rss_after_3000 = rss_kib(proxy.child.id());
    let metrics_after_3000 = admin(&client, &proxy.admin, "/metrics").await.lines().count();
    assert_eq!(junk_host_flood(&client, proxy.listen(), 3_000, 1_000).await, [503]);
    let metrics = admin(&client, &proxy.admin, "/metrics").await;

    assert_eq!(cluster_hosts(&client, &proxy.admin).await, clusters_before, "no cluster per request-named host");
    assert_eq!(
        metrics.lines().count(),
        metrics_after_3000,
        "past the bound, request-named hosts share one label value: no new series"
    );
    assert!(metrics.contains("destination_service=\"PassthroughCluster\""), "the overflow label value");
    assert!(
        metrics.lines().any(|l| l.starts_with("istio_requests_total")
            && l.contains("destination_service=\"127.0.1.1\"")
            && l.contains("response_flags=\"UF\"")),
        "the first hosts keep their own label value; a refused connection is flagged UF"
    );
    // 2,000 more hosts may not grow the proxy by more than allocator noise (the unbounded
    // version grew by ~33 MB per 2,000).
    assert!(
        rss_after_3000 < rss_after_1000 + 3 * 1024,
        "RSS grew from {rss_after_1000} KiB to {rss_after_3000} KiB over 2,000 junk hosts"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_only_answers_unknown_hosts_502_and_removed_config_drops_its_cluster() {
    let (known, other) = (backend("known").await, backend("other").await);
    let dir = config_dir("registry-only");
    std::fs::write(dir.join("se.yaml"), service_entry("known", "known.example.com", &[(known.port, "v1")]))
        .expect("write");
    std::fs::write(dir.join("other.yaml"), service_entry("other", "other.example.com", &[(other.port, "v1")]))
        .expect("write");
    let proxy = start_proxy(&dir, &["--listen", "127.0.0.1:0", "--outbound-traffic-policy", "REGISTRY_ONLY"]);
    let client = client();
    assert_eq!(get(&client, proxy.listen(), "known.example.com", "/", &[]).await.1, "known");
    assert_eq!(get(&client, proxy.listen(), "other.example.com", "/", &[]).await.1, "other");
    for host in ["junk.example.com", "example.com", "127.0.0.1:9", "reviews"] {
        let (status, _, _) = get(&client, proxy.listen(), host, "/", &[]).await;
        assert_eq!(status, 502, "{host}: REGISTRY_ONLY answers without connecting");
    }
    let metrics = admin(&client, &proxy.admin, "/metrics").await;
    assert!(
        metrics.lines().any(|l| l.starts_with("istio_requests_total")
            && l.contains("destination_service=\"junk.example.com\"")
            && l.contains("response_code=\"502\"")),
        "the 502s are counted"
    );
    let hosts = cluster_hosts(&client, &proxy.admin).await;
    assert!(hosts.iter().any(|h| h == "other.example.com"), "{hosts:?}");

    // Remove one ServiceEntry: once two configurations have gone by without it, its idle
    // cluster is gone too.
    std::fs::remove_file(dir.join("other.yaml")).expect("remove");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, _, _) = get(&client, proxy.listen(), "other.example.com", "/", &[]).await;
        if status == 502 {
            break;
        }
        assert!(Instant::now() < deadline, "the removal was never applied");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    write_atomically(&dir.join("se.yaml"), &service_entry("known", "known.example.com", &[(known.port, "v2")]));
    let deadline = Instant::now() + Duration::from_secs(10);
    while cluster_hosts(&client, &proxy.admin).await.iter().any(|h| h == "other.example.com") {
        assert!(Instant::now() < deadline, "the removed service's cluster stayed");
        get(&client, proxy.listen(), "known.example.com", "/", &[]).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An HTTP/1.1 upstream written on raw sockets, that records each request head (as it arrived)
/// and answers what a careless or hostile upstream would: `101` to any `Upgrade` (then echoes
/// the bytes), otherwise `200 ok` with hop-by-hop headers of its own.
async fn raw_recording_backend() -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let heads = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = heads.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                loop {
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") {
                        if stream.read_exact(&mut byte).await.is_err() {
                            return;
                        }
                        head.push(byte[0]);
                    }
                    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
                    seen.lock().expect("lock").push(head.clone());
                    if head.contains("\r\nupgrade:") {
                        let _ = stream
                            .write_all(
                                b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n",
                            )
                            .await;
                        let (mut r, mut w) = stream.split();
                        let _ = tokio::io::copy(&mut r, &mut w).await;
                        return;
                    }
                    let response = "HTTP/1.1 200 OK\r\nConnection: keep-alive, x-internal\r\nx-internal: secret\r\n\
                                    Keep-Alive: timeout=5\r\nContent-Length: 2\r\n\r\nok";
                    if stream.write_all(response.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, heads)
}

/// Send raw bytes to the proxy on a new connection; the response head (lower-cased).
async fn raw_request(listen: &str, request: &'static str) -> String {
    let listen = listen.to_string();
    tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(&listen).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        s.write_all(request.as_bytes()).expect("write");
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            s.read_exact(&mut byte).expect("response head");
            head.push(byte[0]);
        }
        String::from_utf8_lossy(&head).to_ascii_lowercase()
    })
    .await
    .expect("join")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hop_by_hop_headers_stay_on_their_hop_and_only_websocket_upgrades_pass() {
    let (port, heads) = raw_recording_backend().await;
    let dir = config_dir("hop-by-hop");
    std::fs::write(dir.join("se.yaml"), service_entry("raw", "raw.example.com", &[(port, "v1")])).expect("write");
    let proxy = start_proxy(&dir, &["--listen", "127.0.0.1:0"]);

    // curl --http2 on a plain URL (and every Java 11+ client): an h2c upgrade. Served as plain
    // HTTP/1.1; nothing of the upgrade reaches the upstream, which would otherwise answer 101
    // and receive raw HTTP/2 that no routing rule sees.
    let head = raw_request(
        proxy.listen(),
        "GET /a HTTP/1.1\r\nHost: raw.example.com\r\nConnection: Upgrade, HTTP2-Settings, x-secret\r\n\
         Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\nx-secret: 1\r\nTE: gzip\r\nx-kept: 1\r\n\r\n",
    )
    .await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    // The upstream's own hop-by-hop headers stay on its hop too.
    assert!(!head.contains("x-internal") && !head.contains("keep-alive: timeout"), "{head}");
    let upstream = heads.lock().expect("lock").last().cloned().expect("the upstream was called");
    for gone in ["upgrade:", "http2-settings:", "x-secret:", "te: gzip", "connection: upgrade"] {
        assert!(!upstream.contains(gone), "{gone} reached the upstream:\n{upstream}");
    }
    assert!(upstream.contains("x-kept: 1"), "{upstream}");

    // Any other upgrade is refused, as Envoy refuses upgrades it is not configured for.
    let calls = heads.lock().expect("lock").len();
    let head = raw_request(
        proxy.listen(),
        "GET / HTTP/1.1\r\nHost: raw.example.com\r\nConnection: Upgrade\r\nUpgrade: TLS/1.2\r\n\r\n",
    )
    .await;
    assert!(head.starts_with("http/1.1 403"), "{head}");
    assert_eq!(heads.lock().expect("lock").len(), calls, "not forwarded");
    let _ = std::fs::remove_dir_all(&dir);
}

/// An HTTP/2 frame: 9-byte header (length, type, flags, stream) and payload.
fn h2_frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut out = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// An HPACK header block of literal fields (never indexed, no Huffman): any bytes at all,
/// as a hostile client would send them.
fn hpack_literals(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in fields {
        out.push(0x00);
        out.push(name.len() as u8);
        out.extend_from_slice(name.as_bytes());
        out.push(value.len() as u8);
        out.extend_from_slice(value.as_bytes());
    }
    out
}

/// Send `requests` (stream id, header fields) on one new HTTP/2 connection; read frames until
/// `want` has all arrived, a GOAWAY arrives, or 5 s pass: the frames seen, (type, stream).
async fn h2_exchange(listen: &str, requests: &[(u32, Vec<(&str, &str)>)], want: &[(u8, u32)]) -> Vec<(u8, u32)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(listen).await.expect("connect");
    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    out.extend(h2_frame(0x4, 0, 0, &[])); // SETTINGS
    for (stream, fields) in requests {
        out.extend(h2_frame(0x1, 0x5, *stream, &hpack_literals(fields))); // HEADERS, END_STREAM|END_HEADERS
    }
    tcp.write_all(&out).await.expect("write");
    let mut frames: Vec<(u8, u32)> = Vec::new();
    let read = async {
        loop {
            let mut header = [0u8; 9];
            if tcp.read_exact(&mut header).await.is_err() {
                break;
            }
            let len = (usize::from(header[0]) << 16) | (usize::from(header[1]) << 8) | usize::from(header[2]);
            let (kind, flags) = (header[3], header[4]);
            let stream = u32::from_be_bytes([header[5], header[6], header[7], header[8]]) & 0x7fff_ffff;
            let mut payload = vec![0u8; len];
            if tcp.read_exact(&mut payload).await.is_err() {
                break;
            }
            if kind == 0x4 && flags & 0x1 == 0 {
                let _ = tcp.write_all(&h2_frame(0x4, 0x1, 0, &[])).await; // ACK the server's SETTINGS
            }
            frames.push((kind, stream));
            if kind == 0x7 || want.iter().all(|w| frames.contains(w)) {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), read).await;
    frames
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_http2_request_resets_its_stream_not_the_connection() {
    let web = backend("web").await;
    let dir = config_dir("h2-malformed");
    std::fs::write(dir.join("se.yaml"), service_entry("web", "web.example.com", &[(web.port, "v1")])).expect("write");
    let proxy = start_proxy(&dir, &["--listen", "127.0.0.1:0"]);
    let valid = vec![(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "web.example.com")];

    // Stream 1: no :path. Stream 3: a connection-specific header (RFC 9113 §8.2.2). Stream 5:
    // `te` other than trailers. Each is a stream error (RFC 9113 §8.1.1): reset, and stream 7,
    // well-formed, on the same connection, is answered.
    let malformed: Vec<(u32, Vec<(&str, &str)>)> = vec![
        (1, vec![(":method", "GET"), (":scheme", "http"), (":authority", "web.example.com")]),
        (3, [&valid[..], &[("connection", "keep-alive")]].concat()),
        (5, [&valid[..], &[("te", "gzip")]].concat()),
    ];
    let mut requests = malformed.clone();
    requests.push((7, valid.clone()));
    let want: Vec<(u8, u32)> = malformed.iter().map(|(s, _)| (0x3, *s)).chain([(0x1, 7)]).collect();
    let frames = h2_exchange(proxy.listen(), &requests, &want).await;
    assert!(!frames.iter().any(|(kind, _)| *kind == 0x7), "the connection was closed (GOAWAY): {frames:?}");
    for w in &want {
        assert!(frames.contains(w), "missing {w:?} (RST_STREAM = 3, HEADERS = 1): {frames:?}");
    }
    assert_eq!(web.hits(), 1, "only the well-formed request reached the upstream");

    // A CR LF in a field value (request splitting towards an HTTP/1.1 upstream): never
    // forwarded. (The h2 crate treats an invalid value as an HPACK decoding error and closes
    // the connection, where RFC 9113 §8.2.1 asks for a stream error; see the server module docs.)
    let bad: Vec<(u32, Vec<(&str, &str)>)> = vec![(1, [&valid[..], &[("x-bad", "a\r\nx-injected: 1")]].concat())];
    h2_exchange(proxy.listen(), &bad, &[(0x1, 1)]).await;
    assert_eq!(web.hits(), 1, "the request with CR LF did not reach the upstream");
    let frames = h2_exchange(proxy.listen(), &[(1, valid.clone())], &[(0x1, 1)]).await;
    assert!(frames.contains(&(0x1, 1)), "the proxy serves the next connection: {frames:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ready_client_is_a_tonic_transport_with_the_whole_mesh() {
    // Two Greeter endpoints behind a GRPC service port: the ready client speaks HTTP/2 to them
    // (the port's protocol), picks an endpoint per call, and the
    // VirtualService's gRPC fault applies — what a tonic `Channel` cannot get, since it dials
    // its own address.
    let (a, b) = (greeter_server().await, greeter_server().await);
    let yaml = service_entry("greeter", "greeter.default.svc.cluster.local", &[(a, "v1"), (b, "v1")])
        .replace("protocol: HTTP}", "protocol: GRPC}")
        + r#"
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: greeter}
spec:
  host: greeter
  trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: greeter}
spec:
  hosts: [greeter]
  http:
  - match: [{headers: {end-user: {exact: tester}}}]
    fault: {abort: {grpcStatus: RESOURCE_EXHAUSTED, percentage: {value: 100}}}
    route: [{destination: {host: greeter}}]
  - route: [{destination: {host: greeter}}]
"#;
    let dir = config_dir("tonic-ready-client");
    std::fs::write(dir.join("greeter.yaml"), yaml).expect("write");
    let source = mesh_proxy::reload::ConfigSource::new(vec![dir.clone()], "default").expect("loads");
    let transport = mesh_proxy::client::client::<tonic::body::Body>(source.mesh());
    let call = |user: Option<&'static str>| {
        let mut grpc = tonic::client::Grpc::with_origin(transport.clone(), "http://greeter".parse().expect("origin"));
        async move {
            grpc.ready().await.map_err(|e| tonic::Status::unavailable(e.to_string()))?;
            let mut request = tonic::Request::new(HelloRequest { name: "mesh".into() });
            if let Some(user) = user {
                request.metadata_mut().insert("end-user", user.parse().expect("ascii"));
            }
            let codec = tonic_prost::ProstCodec::<HelloRequest, HelloReply>::default();
            grpc.unary(request, http::uri::PathAndQuery::from_static(SAY_HELLO), codec)
                .await
                .map(|r| r.into_inner().message)
        }
    };
    for _ in 0..4 {
        assert_eq!(call(None).await.expect("the call succeeds"), "hello mesh");
    }
    let status = call(Some("tester")).await.expect_err("the fault aborts");
    assert_eq!(status.code(), tonic::Code::ResourceExhausted);
    let clusters = source.mesh().clusters().all();
    let greeter =
        clusters.iter().find(|c| &*c.destination().host == "greeter.default.svc.cluster.local").expect("cluster");
    assert!(greeter.http2(), "HTTP/2 to the GRPC port");
    let _ = std::fs::remove_dir_all(&dir);
}
