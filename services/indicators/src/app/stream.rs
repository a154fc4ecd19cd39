//! Server streams (the CSV export, snapshot watchers): a task produces the
//! items into a bounded channel and stops early, quietly, when the reader
//! goes away; an error that ends the stream is its last item.

use std::future::Future;
use throughcare_platform::error::Error;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

/// Rows read per page while exporting or watching.
pub(super) const STREAM_PAGE: i64 = 2_000;

/// What a streaming use case answers: items, then possibly the error that
/// ended the stream.
pub type Streamed<T> = ReceiverStream<Result<T, Error>>;

/// Why a producer stopped before its end.
#[derive(Debug)]
pub(super) enum Stop {
    /// The reader went away: nobody to tell.
    Gone,
    /// The stream ends with this error.
    Failed(Error),
}

impl From<Error> for Stop {
    fn from(error: Error) -> Self {
        Stop::Failed(error)
    }
}

impl From<sqlx::Error> for Stop {
    fn from(error: sqlx::Error) -> Self {
        Stop::Failed(error.into())
    }
}

/// Where a producer sends its items.
#[derive(Debug)]
pub(super) struct Sink<T>(mpsc::Sender<Result<T, Error>>);

impl<T> Sink<T> {
    /// Sends `item`; [`Stop::Gone`] once the reader has gone away.
    pub(super) async fn send(&self, item: T) -> Result<(), Stop> {
        self.0.send(Ok(item)).await.map_err(|_| Stop::Gone)
    }

    pub(super) fn is_closed(&self) -> bool {
        self.0.is_closed()
    }
}

/// Runs `produce` in its own task, its items read from the stream returned
/// (at most `buffer` waiting).
pub(super) fn spawn<T, F, Fut>(buffer: usize, produce: F) -> Streamed<T>
where
    T: Send + 'static,
    F: FnOnce(Sink<T>) -> Fut,
    Fut: Future<Output = Result<(), Stop>> + Send + 'static,
{
    let (sender, receiver) = mpsc::channel(buffer);
    let last = sender.clone();
    let producing = produce(Sink(sender));
    tokio::spawn(async move {
        if let Err(Stop::Failed(error)) = producing.await {
            let _ = last.send(Err(error)).await;
        }
    });
    ReceiverStream::new(receiver)
}
