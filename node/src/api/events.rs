//! `GET /v1/events`: server-sent events, one `sample` event (a JSON [`Sample`]) each
//! [`SAMPLE_INTERVAL`](super::SAMPLE_INTERVAL), from the one sampler task the server runs.
//! Each stream holds a slot of [`MAX_SSE_CLIENTS`](super::MAX_SSE_CLIENTS); past that the
//! route answers 503. A stream ends when the server shuts down.

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::stream::{self, Stream};
use tokio::sync::{OwnedSemaphorePermit, watch};

use super::{ApiState, Sample, error};

/// The event stream's route.
pub(super) fn routes() -> Router<ApiState> {
    Router::new().route("/v1/events", get(events))
}

async fn events(State(state): State<ApiState>) -> Response {
    let Ok(permit) = state.inner.sse_slots.clone().try_acquire_owned() else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many event streams open; close one",
        );
    };
    let samples = state.inner.samples.clone();
    let stop = state.inner.stop.subscribe();
    Sse::new(sample_stream(samples, stop, permit))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// Each new sample as an event (the current one first), until `stop` turns true or the
/// sampler is gone. The permit lives as long as the stream.
fn sample_stream(
    samples: watch::Receiver<Sample>,
    stop: watch::Receiver<bool>,
    permit: OwnedSemaphorePermit,
) -> impl Stream<Item = Result<Event, Infallible>> {
    stream::unfold(
        (samples, stop, permit, true),
        |(mut samples, mut stop, permit, first)| async move {
            if !first {
                tokio::select! {
                    changed = samples.changed() => changed.ok()?,
                    _ = stop.wait_for(|s| *s) => return None,
                }
            }
            if *stop.borrow() {
                return None;
            }
            let sample = samples.borrow_and_update().clone();
            let data = serde_json::to_string(&sample).unwrap_or_else(|_| "{}".into());
            let event = Event::default().event("sample").data(data);
            Some((Ok(event), (samples, stop, permit, false)))
        },
    )
}
