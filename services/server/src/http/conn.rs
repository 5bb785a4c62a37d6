//! The accept loop: HTTP/1 connections served by hyper with a head-read
//! deadline, at most `max_connections` at a time, and graceful shutdown.
//! `axum::serve` exposes neither hyper's header timeout nor a connection limit.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// What a connection may take: see the `serve` flags.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    /// Until a request's head has arrived. Hyper starts this clock whenever a
    /// connection waits for a head: on a new connection and between the
    /// requests of a kept-alive one, so it is the idle limit too.
    pub header_timeout: Duration,
    pub max_connections: usize,
    /// Keep a connection whose client has shut down its sending side, and
    /// answer it. Off, the end of the client's stream ends the connection,
    /// which is how a client that has gone is noticed and its work dropped.
    pub half_close: bool,
}

/// Serves `app` until `shutdown` resolves, then stops accepting and waits
/// for the connections' requests in flight (idle connections close at once).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnLimits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout).half_close(limits.half_close);
    tokio::pin!(shutdown);
    loop {
        // At the limit, connections wait in the listen backlog rather than being accepted and starved.
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => p.map_err(std::io::Error::other)?,
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors or a connection reset before accept: wait, don't spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let conn = builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()));
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
