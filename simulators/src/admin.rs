//! The HTTP + JSON admin endpoint (axum): counters, received messages, MO
//! injection, live fault changes, corrupt frame on demand.
//!
//! | method | path | body / answer |
//! |---|---|---|
//! | GET | `/health` | `ok` |
//! | GET | `/stats` | [`StatsSnapshot`](crate::StatsSnapshot) |
//! | GET | `/messages` | `[ReceivedMessage]`, oldest first |
//! | DELETE | `/messages` | clears the ring |
//! | POST | `/mo` | [`MoRequest`](crate::MoRequest) → `{"segments": n}` |
//! | GET | `/faults` | [`Faults`](crate::Faults) |
//! | PUT | `/faults` | `Faults` (replaces the whole set) |
//! | POST | `/corrupt` | `{"account": "...", "kind": "length" \| "garbage" \| "body"}` → `{"connections": n}` |

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use std::sync::Arc;
use tokio::net::TcpListener;

use crate::core::SimCore;
use crate::faults::{CorruptKind, Faults};
use crate::{MoRequest, SimError};

type Core = State<Arc<SimCore>>;

pub(crate) async fn serve(core: Arc<SimCore>, listener: TcpListener) {
    let mut shutdown = core.shutdown.clone();
    let app = Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/stats", get(stats))
        .route("/messages", get(messages).delete(clear_messages))
        .route("/mo", post(mo))
        .route("/faults", get(get_faults).put(put_faults))
        .route("/corrupt", post(corrupt))
        .with_state(core);
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = shutdown.changed().await;
        })
        .await;
    if let Err(e) = result {
        tracing::warn!(error = %e, "admin endpoint stopped");
    }
}

fn error(status: StatusCode, msg: String) -> Response {
    (status, Json(serde_json::json!({ "error": msg }))).into_response()
}

async fn stats(State(core): Core) -> Response {
    Json(core.stats()).into_response()
}

async fn messages(State(core): Core) -> Response {
    Json(core.ring.list()).into_response()
}

async fn clear_messages(State(core): Core) -> StatusCode {
    core.ring.clear();
    StatusCode::NO_CONTENT
}

async fn mo(State(core): Core, Json(req): Json<MoRequest>) -> Response {
    match crate::inject_mo(&core, req) {
        Ok(n) => Json(serde_json::json!({ "segments": n })).into_response(),
        Err(e @ SimError::UnknownAccount(_)) => error(StatusCode::NOT_FOUND, e.to_string()),
        Err(e) => error(StatusCode::BAD_REQUEST, e.to_string()),
    }
}

async fn get_faults(State(core): Core) -> Response {
    Json((*core.faults.get()).clone()).into_response()
}

async fn put_faults(State(core): Core, Json(f): Json<Faults>) -> Response {
    match core.faults.set(f) {
        Ok(()) => {
            tracing::info!("faults changed through the admin endpoint");
            Json((*core.faults.get()).clone()).into_response()
        }
        Err(e) => error(StatusCode::BAD_REQUEST, e),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CorruptReq {
    #[serde(default)]
    account: Option<String>,
    #[serde(default)]
    kind: CorruptKind,
}

async fn corrupt(State(core): Core, Json(req): Json<CorruptReq>) -> Response {
    let n = crate::corrupt(&core, req.account.as_deref(), req.kind);
    Json(serde_json::json!({ "connections": n })).into_response()
}
