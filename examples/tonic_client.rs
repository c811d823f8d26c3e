//! Run with `cargo run --example tonic_client`
//!
//! A tonic gRPC client whose `Channel` is wrapped in meshwork. The Greeter server answers
//! `UNAVAILABLE` to its first two calls; a VirtualService with Istio's gRPC retry condition
//! (`retryOn: unavailable`) makes the call succeed anyway, and a fault rule aborts the calls of
//! user `tester` with gRPC status `RESOURCE_EXHAUSTED`, as Envoy's fault filter would.
//!
//! A tonic `Channel` connects to the address it was built with (it overwrites the request URI's
//! origin), so meshwork's endpoint pick does not change where a Channel sends; routing, retries,
//! timeouts, faults and metrics all apply. For per-endpoint balancing and outlier detection, put
//! the mesh around a hyper-util `Client` built with `http2_only(true)` instead.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use anyhow::Result;
use meshwork::config::{ConfigStore, LoadOptions, load_str};
use meshwork::tower::{Endpoint, Mesh, Registry, ReplayBody};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::server::NamedService;
use tonic::transport::{Channel, Server};
use tonic::{Code, Status};
use tonic_prost::ProstCodec;
use tower::ServiceBuilder;

/// `helloworld.HelloRequest`, written by hand instead of generated (no protoc needed).
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

const CONFIG: &str = r#"
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
    retries: {attempts: 3, retryOn: unavailable}
"#;

/// The Greeter service, routed by hand (what tonic's codegen would write).
#[derive(Clone, Default)]
struct Greeter {
    calls: Arc<AtomicUsize>,
}

impl NamedService for Greeter {
    const NAME: &'static str = "helloworld.Greeter";
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl tower::Service<http::Request<tonic::body::Body>> for Greeter {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        let calls = self.calls.clone();
        Box::pin(async move {
            let say_hello = tower::service_fn(move |req: tonic::Request<HelloRequest>| {
                let n = calls.fetch_add(1, Ordering::SeqCst);
                async move {
                    if n < 2 {
                        return Err(Status::unavailable(format!("warming up (call {n})")));
                    }
                    Ok(tonic::Response::new(HelloReply { message: format!("Hello {}!", req.into_inner().name) }))
                }
            });
            let mut grpc = tonic::server::Grpc::new(ProstCodec::<HelloReply, HelloRequest>::default());
            Ok(grpc.unary(say_hello, req).await)
        })
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let greeter = Greeter::default();
    let calls = greeter.calls.clone();
    tokio::spawn(
        Server::builder()
            .add_service(greeter)
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );

    let registry = Registry::new();
    registry.register("greeter.default.svc.cluster.local", Endpoint::new(addr.to_string(), [("version", "v1")]));
    let mut store = ConfigStore::default();
    store.apply(load_str(CONFIG, None, &LoadOptions::default())?);
    let mesh = Mesh::builder().config(store.snapshot().clone()).registry(registry).workload("greeter-client").build();

    // The Channel, wrapped: meshwork hands it bodies it can replay; tonic wants its own body type.
    let channel = Channel::from_shared(format!("http://{addr}"))?.connect().await?;
    let stack = ServiceBuilder::new()
        .layer(mesh.layer())
        .map_request(|r: http::Request<ReplayBody<tonic::body::Body>>| r.map(tonic::body::Body::new))
        .service(channel);
    let mut client = tonic::client::Grpc::with_origin(stack, "http://greeter:50051".parse()?);
    let path = PathAndQuery::from_static("/helloworld.Greeter/SayHello");

    client.ready().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let reply = client
        .unary(tonic::Request::new(HelloRequest { name: "meshwork".into() }), path.clone(), ProstCodec::default())
        .await;
    match reply {
        Ok(r) => {
            let reply: HelloReply = r.into_inner();
            println!(
                "reply: {:?} after {} calls (two UNAVAILABLE retried)",
                reply.message,
                calls.load(Ordering::SeqCst)
            );
        }
        Err(status) => println!("failed: {status}"),
    }

    let mut request = tonic::Request::new(HelloRequest { name: "tester".into() });
    request.metadata_mut().insert("end-user", "tester".parse()?);
    client.ready().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let aborted: Result<tonic::Response<HelloReply>, Status> = client.unary(request, path, ProstCodec::default()).await;
    match aborted {
        Err(status) if status.code() == Code::ResourceExhausted => {
            println!(
                "tester: {:?} from the fault rule, server untouched ({} calls)",
                status.code(),
                calls.load(Ordering::SeqCst)
            )
        }
        other => println!("tester: unexpected {other:?}"),
    }
    Ok(())
}
