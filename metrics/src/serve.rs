//! `GET /metrics` over HTTP: a small synchronous server (`tiny_http`, no
//! async runtime) that gathers the ledger again when its cached text is
//! older than the cache period. It opens the ledger read-only for each
//! gather and never writes it; every other path answers 404.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::Result;

/// What [`serve`] serves.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// `ADDR:PORT` to listen on.
    pub listen: String,
    /// The ledger.
    pub db: PathBuf,
    /// The plugin snapshot.
    pub snapshot: PathBuf,
    /// How long a gathered text is served again before the ledger is read
    /// anew.
    pub cache: Duration,
}

/// The content type of an OpenMetrics text exposition.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Serves until the process is stopped (returns only when it cannot
/// listen). `now_us` is the clock; `listening` is told the bound address
/// once (port 0 picks a free port).
pub fn serve(opts: &ServeOptions, now_us: &dyn Fn() -> i64, listening: &dyn Fn(std::net::SocketAddr)) -> Result<()> {
    let server = tiny_http::Server::http(opts.listen.as_str())
        .map_err(|e| Error::Io(format!("cannot listen on {}: {e}", opts.listen)))?;
    if let Some(addr) = server.server_addr().to_ip() {
        listening(addr);
    }
    let mut cached: Option<(Instant, std::sync::Arc<str>)> = None;
    let header = |k: &str, v: &str| tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()).ok();
    for request in server.incoming_requests() {
        let path = request.url().split('?').next().unwrap_or("");
        // OpenMetrics to those who ask for it (Prometheus does), the
        // classic text format to the rest.
        let openmetrics = request
            .headers()
            .iter()
            .any(|h| h.field.equiv("Accept") && h.value.as_str().contains("application/openmetrics-text"));
        let response = if path != "/metrics" {
            tiny_http::Response::from_string("not found; the metrics are at /metrics\n").with_status_code(404)
        } else if !matches!(request.method(), tiny_http::Method::Get | tiny_http::Method::Head) {
            tiny_http::Response::from_string("only GET\n").with_status_code(405)
        } else {
            let fresh = cached.as_ref().filter(|(at, _)| at.elapsed() < opts.cache).map(|(_, t)| t.clone());
            let text = match fresh {
                Some(t) => Ok(t),
                None => crate::gather(&opts.db, &opts.snapshot, now_us()).map(|s| {
                    let t: std::sync::Arc<str> = crate::encode(&s).into();
                    cached = Some((Instant::now(), t.clone()));
                    t
                }),
            };
            match text {
                Ok(t) => {
                    let (body, content_type) = if openmetrics {
                        (t.to_string(), CONTENT_TYPE)
                    } else {
                        (crate::to_classic_text(&t), crate::TEXT_CONTENT_TYPE)
                    };
                    let mut r = tiny_http::Response::from_string(body);
                    if let Some(h) = header("Content-Type", content_type) {
                        r = r.with_header(h);
                    }
                    r
                }
                Err(e) => {
                    tiny_http::Response::from_string(format!("cannot read the ledger: {e}\n")).with_status_code(500)
                }
            }
        };
        // A client that went away is no reason to stop serving.
        let _ = request.respond(response);
    }
    Ok(())
}
